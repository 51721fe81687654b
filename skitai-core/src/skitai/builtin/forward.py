"""`skitai.enable_forward`: its redirects answered ahead of the mount table, registered only
when forwarding is on (other servers never ask it about a request)."""
from ..forward import ForwardHandler, ForwardRules
from ..plugin import hookimpl

FORWARD_PRIORITY = 100  # before the mount table (1000): a redirected request never reaches an app


@hookimpl
def skitai_configure(config):
    if config.forward_port is None:
        return
    if not config.ssl_certfile:
        raise ValueError("skitai.enable_forward() redirects to https: call skitai.enable_ssl() too")
    if config.forward_port == config.port:
        raise ValueError(f"skitai.enable_forward(): port {config.port} already serves https; "
                         "forward from another port")


@hookimpl
def skitai_register_handlers(handlers, config):
    if config.forward_port is not None:
        domain = config.forward_domain.lower() if config.forward_domain else None
        handlers.add(ForwardHandler(ForwardRules(config.forward_to_port, domain)), priority=FORWARD_PRIORITY)
