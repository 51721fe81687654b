"""The skitai-gateway plugin: it serves the alias kinds PROTO_HTTP and PROTO_HTTPS and adds the
corequests `was.get`, `was.post`, `was.put`, `was.patch`, `was.delete`, `was.options`,
`was.head` and `was.upload`, and the RPC stubs `was.xmlrpc` and `was.jsonrpc` (each with `.lb` and
`.map`), over one connection pool per worker process that is opened when the server starts and
closed when it stops, behind cachefs when `skitai.enable_cachefs` turned it on (a setting of the
core's config, like the backend keep-alive: the manual names it `skitai.enable_cachefs`, and the
proxy reads it too). It also mounts HTTP aliases as a reverse proxy: `skitai.mount("/x",
"@alias")` (see `reverseproxy`)."""
from __future__ import annotations

import skitai
from skitai.backends import Alias
from skitai.plugin import hookimpl

from .cachefs import CacheFS
from .calls import HttpMethod, Upload
from .forwarding import Forwarder
from .reverseproxy import AliasAdapter
from .rpc import JsonRpc, XmlRpc
from .upstreams import Upstreams

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


def _check_members(alias: Alias) -> None:
    for member in alias.members:
        if member.database:
            raise ValueError(f"member {member.address}/{member.database}: an HTTP member is "
                             f"[user:password@]host[:port]; put the path in the call: was.get('{alias.name}/...')")


@hookimpl
def skitai_register_backends(backends):
    for kind in (skitai.PROTO_HTTP, skitai.PROTO_HTTPS):
        backends.add(kind, "skitai-gateway", validate=_check_members)


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
