"""The skitai-gateway plugin: it serves the alias kinds PROTO_HTTP and PROTO_HTTPS (and its own
"h2" and "h2c": HTTP/2 members, see `http2`), PROTO_WS and PROTO_WSS (`was.ws`) and adds the
corequests `was.get`, `was.post`, `was.put`, `was.patch`, `was.delete`, `was.options`,
`was.head` and `was.upload`, and the RPC stubs `was.xmlrpc` and `was.jsonrpc` (each with `.lb` and
`.map`), over one connection pool per worker process that is opened when the server starts and
closed when it stops, behind cachefs when `skitai.enable_cachefs` turned it on (a setting of the
core's config, like the backend keep-alive: the manual names it `skitai.enable_cachefs`, and the
proxy reads it too). It also mounts HTTP aliases as a reverse proxy: `skitai.mount("/x",
"@alias")` (see `reverseproxy`), guarded as an API gateway by `skitai.enable_gateway` (see
`gateway`), and serves as a forward proxy after `skitai.enable_proxy` (see `forwardproxy`)."""
from __future__ import annotations

import skitai
from skitai.backends import Alias
from skitai.mounting import MountTable
from skitai.plugin import hookimpl

from .cachefs import CacheFS
from .calls import HttpMethod, Upload
from .forwarding import Forwarder
from .forwardproxy import ForwardProxy
from .gateway import GatewayGuard
from .http2 import PROTO_H2, PROTO_H2C
from .reverseproxy import AliasAdapter, AliasMount
from .rpc import JsonRpc, XmlRpc
from .upstreams import Upstreams
from .websocket import WebSocketCall

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


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
    unguarded."""
    if config.forward_proxy is not None:
        handlers.add(ForwardProxy(config), priority=200)
    guard = GatewayGuard(config)
    for table in handlers.handlers:
        if isinstance(table, MountTable):
            for mount in table.handlers():
                if isinstance(mount, AliasMount):
                    mount.guard = guard


@hookimpl
def skitai_configure(config):
    gateway = config.api_gateway
    if config.auth_handler is not None and (gateway is None or not gateway.enable_auth):
        raise ValueError("skitai.set_auth_handler(handler) needs skitai.enable_gateway(True, ...): "
                         "the handler decides on verified tokens")


@hookimpl
def skitai_register_adapters(adapters):
    adapters.add(AliasAdapter())


@hookimpl
def skitai_register_services(was):
    # on the worker's loop, which the pool belongs to; cachefs shared with the reverse proxy
    upstreams = Upstreams(was.server.config, CacheFS.for_server(was.server))
    for method in METHODS:
        was.add_service(method.lower(), HttpMethod(was, method, upstreams))
    was.add_service("upload", Upload(was, upstreams))
    was.add_service("xmlrpc", XmlRpc(was, upstreams))
    was.add_service("jsonrpc", JsonRpc(was, upstreams))
    was.add_service("ws", WebSocketCall(was, upstreams))


@hookimpl
def skitai_server_stop(server):
    """Close the pools; the server awaits the corequests' before its loop ends."""
    forwarder = getattr(server, "skitai_gateway_forwarder", None)
    if isinstance(forwarder, Forwarder):
        forwarder.close()
    driver = server.was.services.get("get") if server.was is not None else None
    if isinstance(driver, HttpMethod):
        return driver.upstreams.close()
    return None
