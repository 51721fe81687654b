"""The gateway's corequest services of one worker (`was.get` ... `was.upload`, `was.xmlrpc`,
`was.jsonrpc`, `was.ws`), made together over one connection pool at the first use of any of
them (`plugin` registers them as lazy services): their clients, aiohttp and httpx, cost each
worker about 12 MiB, which a worker whose app makes no upstream call should not pay for."""
from __future__ import annotations

from typing import Any

from .cachefs import CacheFS
from .calls import HttpMethod, Upload
from .names import METHODS
from .rpc import JsonRpc, XmlRpc
from .upstreams import Upstreams
from .websocket import WebSocketCall


def make_services(was: Any) -> dict[str, Any]:
    """Every service by its name (`names.SERVICES`), sharing the worker's pool; cachefs shared
    with the reverse proxy."""
    upstreams = Upstreams(was.server.config, CacheFS.for_server(was.server))
    services: dict[str, Any] = {method.lower(): HttpMethod(was, method, upstreams) for method in METHODS}
    services.update(upload=Upload(was, upstreams), xmlrpc=XmlRpc(was, upstreams), jsonrpc=JsonRpc(was, upstreams),
                    ws=WebSocketCall(was, upstreams))
    return services
