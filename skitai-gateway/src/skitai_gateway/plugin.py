"""The skitai-gateway plugin: it serves the alias kinds PROTO_HTTP and PROTO_HTTPS (and its own
"h2" and "h2c": HTTP/2 members, see `http2`), PROTO_WS and PROTO_WSS (`was.ws`) and adds the
corequests `was.get`, `was.post`, `was.put`, `was.patch`, `was.delete`, `was.options`,
`was.head` and `was.upload`, and the RPC stubs `was.xmlrpc` and `was.jsonrpc` (each with `.lb` and
`.map`), over one connection pool per worker process, made at the first use of any of them (their
clients, aiohttp and httpx, are imported then: see `services`) and closed when the server stops,
behind cachefs when `skitai.enable_cachefs` turned it on (a setting of the core's config, like the
backend keep-alive: the manual names it `skitai.enable_cachefs`, and the proxy reads it too). It
also mounts HTTP aliases as a reverse proxy: `skitai.mount("/x", "@alias")` (see `reverseproxy`,
imported with the first alias mounted), guarded as an API gateway by `skitai.enable_gateway`
(see `gateway`; PyJWT is imported only when it checks tokens), and serves as a forward proxy
after `skitai.enable_proxy` (see `forwardproxy`, imported then)."""
from __future__ import annotations

import sys

import skitai
from skitai.backends import Alias
from skitai.mounting import MountTable
from skitai.plugin import hookimpl, import_feature, require_libraries

from .adapter import AliasAdapter
from .gateway import GatewayGuard
from .names import PROTO_H2, PROTO_H2C, SERVICES


def _check_members(alias: Alias) -> None:
    if alias.kind == PROTO_H2C and alias.ssl:
        raise ValueError("h2c is cleartext HTTP/2; for HTTP/2 over TLS declare the alias as 'h2'")
    for member in alias.members:
        if member.database:
            raise ValueError(f"member {member.address}/{member.database}: an HTTP member is "
                             f"[user:password@]host[:port]; put the path in the call: was.get('{alias.name}/...')")


@hookimpl
def skitai_register_backends(backends):
    for kind in (skitai.PROTO_HTTP, skitai.PROTO_HTTPS, PROTO_H2, PROTO_H2C, skitai.PROTO_WS, skitai.PROTO_WSS):
        backends.add(kind, "skitai-gateway", validate=_check_members)


@hookimpl
def skitai_register_handlers(handlers, config):
    """The forward proxy, when `skitai.enable_proxy()` turned it on: asked before the mount
    table, it takes CONNECT and absolute-form requests. Every mounted alias gets its guard (the
    API gateway's checks when `skitai.enable_gateway()` turned it on, else the alias's `source`
    and `role` alone), here in the master before any request, so none reaches a member
    unguarded. The guard is made with `enable_gateway()` even when nothing is mounted yet, so
    that its settings (keys, algorithms) are checked at the start."""
    if config.forward_proxy is not None:
        from .forwardproxy import ForwardProxy  # here: with the forwarding behind it, only when on

        handlers.add(ForwardProxy(config), priority=200)
    reverseproxy = sys.modules.get("skitai_gateway.reverseproxy")  # imported by the first alias mounted
    mounts = [] if reverseproxy is None else [
        mount for table in handlers.handlers if isinstance(table, MountTable)
        for mount in table.handlers() if isinstance(mount, reverseproxy.AliasMount)]
    if mounts or config.api_gateway is not None:
        guard = GatewayGuard(config)
        for mount in mounts:
            mount.guard = guard


@hookimpl
def skitai_configure(config):
    # the corequests are always on and import their clients at their first use: a broken
    # installation stops the start, not that request
    require_libraries("the gateway's was.get", "skitai-gateway", "aiohttp", "httpx")
    gateway = config.api_gateway
    if config.auth_handler is not None and (gateway is None or not gateway.enable_auth):
        raise ValueError("skitai.set_auth_handler(handler) needs skitai.enable_gateway(True, ...): "
                         "the handler decides on verified tokens")


@hookimpl
def skitai_register_adapters(adapters):
    adapters.add(AliasAdapter())


@hookimpl
def skitai_register_services(was):
    """The corequest services, made all together at the first use of one (see `services`):
    `was` makes one at a time, so the others find them made."""
    def service(name: str):
        made = getattr(was.server, "skitai_gateway_services", None)
        if made is None:
            services = import_feature("skitai_gateway.services", f"was.{name}", "skitai-gateway")
            made = was.server.skitai_gateway_services = services.make_services(was)
        return made[name]

    for name in SERVICES:
        was.add_lazy_service(name, lambda name=name: service(name))


@hookimpl
def skitai_server_stop(server):
    """Close the pools; the server awaits the corequests' before its loop ends."""
    forwarder = getattr(server, "skitai_gateway_forwarder", None)  # the proxies' (`forwarding`)
    if forwarder is not None:
        forwarder.close()
    made = getattr(server, "skitai_gateway_services", None)  # at the first use of any of them
    if made is not None:
        return made["get"].upstreams.close()
    return None
