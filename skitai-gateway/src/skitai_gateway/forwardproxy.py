"""The forward proxy of `skitai.enable_proxy()`: a request handler, asked before the mount table,
that takes `CONNECT host:port` (HTTP/1.1 authority-form; HTTP/2 plain CONNECT, RFC 9113 8.5),
tunnelled to the destination, and HTTP/1.1 absolute-form requests (`GET http://host/path`),
forwarded by the reverse proxy's engine (`forwarding.Forwarder`: hop-by-hop fields removed,
`Proxy-Authorization` never passed on, Forwarded and Via added, the body streamed both ways);
with cachefs on, their GET and HEAD are cached under the absolute URL by the reverse proxy's
rules.

Each request is checked in this order: `Proxy-Authorization` when users are configured (407 with
a `Proxy-Authenticate` challenge), the destination's port and name, then every address the name
resolves to (403, see `destinations`); a name that does not resolve or a destination that cannot
be reached is 502, one that does not answer within `CONNECT_TIMEOUT` 504. Only then is the
CONNECT answered `200` and relayed, or the request forwarded, to an address that was checked
(the destination still gets the name the client wrote in its Host field).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from skitai.plugin import Exchange, RequestHandler, error_body, error_headers, status_line

from .connecttunnel import Tunnel, connect
from .destinations import DestinationPolicy, Refused, Unresolvable, resolve
from .forwarding import Forwarder, NotForwarded
from .proxyauth import ProxyCredentials
from .upstreamconn import Origin

log = logging.getLogger("skitai.gateway.proxy")

CONNECT_TIMEOUT = 10.0  # seconds to reach a destination: 504 after it


class ForwardProxy(RequestHandler):
    def __init__(self, config: Any) -> None:
        settings = config.forward_proxy
        self.policy = DestinationPolicy(settings.allow, settings.deny, settings.ports, settings.public)
        self.credentials = ProxyCredentials(settings.users, settings.realm) if settings.users else None
        self.tunnel_timeout = config.proxy_tunnel_keep_alive
        self.tunnels: set[Tunnel] = set()  # open ones (tests watch them)
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

        self.forwarder: Forwarder | None = None

    def bind(self, server: Any) -> None:
        self.forwarder = Forwarder.for_server(server)

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        if exchange.method == "CONNECT":
            return self if exchange.connect_protocol is None else None
        target = exchange.target
        return self if "://" in target and not target.startswith("/") else None  # absolute-form

    def handle(self, exchange: Exchange) -> None:
        task = exchange.loop.create_task(self._serve(exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, exchange: Exchange) -> None:
        try:
            await (self._tunnel(exchange) if exchange.method == "CONNECT" else self._forward(exchange))
        except Exception:  # a defect of ours: the client gets an answer, the log the traceback
            log.exception("proxy: %s %s failed (gtxid %s)", exchange.method, exchange.target,
                          exchange.transaction.gtxid)
            if not exchange.response_started:
                refuse(exchange, 500, "the proxy failed")
            else:
                exchange.abort()

    def authorized(self, exchange: Exchange) -> bool:
        """Whether the request may use the proxy; answers 407 when not."""
        if self.credentials is None or self.credentials.user_of(exchange.header("proxy-authorization")):
            return True
        refuse(exchange, 407, "proxy authentication required", self.credentials.challenge)
        return False

    async def _destination(self, exchange: Exchange, host: str, port: int) -> list[tuple] | None:
        """The checked addresses of `host:port`, or None once the request was refused."""
        if not 0 < port < 65536:
            return refuse(exchange, 400, f"port {port} is not between 1 and 65535")
        try:
            return await asyncio.wait_for(resolve(exchange.loop, self.policy, host, port), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            return refuse(exchange, 504, f"{host} did not resolve within {CONNECT_TIMEOUT:g} s")
        except Refused as error:
            return refuse(exchange, 403, str(error))
        except Unresolvable as error:
            return refuse(exchange, 502, str(error))

    async def _tunnel(self, exchange: Exchange) -> None:
        if not self.authorized(exchange):
            return
        loop = exchange.loop
        targets = await self._destination(exchange, *split_authority(exchange.target))
        if targets is None:
            return
        tunnel = Tunnel(loop, self.tunnel_timeout)
        try:
            await connect(loop, targets, CONNECT_TIMEOUT, tunnel.upstream)
        except TimeoutError as error:
            tunnel.close()
            return refuse(exchange, 504, f"{exchange.target}: {error}")
        except OSError as error:
            tunnel.close()
            return refuse(exchange, 502, f"{exchange.target}: {error.strerror or error}")
        if exchange.aborted:  # the client left while the proxy connected
            tunnel.close()
            return
        try:
            exchange.open_tunnel("200 Connection Established", [], tunnel.client)
        except RuntimeError as error:  # a CONNECT with a body, or with requests pipelined behind it
            tunnel.close()
            return refuse(exchange, 400, str(error))
        self.tunnels.add(tunnel)
        tunnel.done.add_done_callback(lambda _: self.tunnels.discard(tunnel))

    async def _forward(self, exchange: Exchange) -> None:
        if not self.authorized(exchange):
            return
        url = urlsplit(exchange.target)
        if url.scheme.lower() != "http":
            return refuse(exchange, 400, f"{url.scheme}:// through the proxy: use CONNECT (https_proxy) for https")
        try:
            host, port = url.hostname or "", url.port or 80
        except ValueError:
            return refuse(exchange, 400, "invalid port in the request target")
        targets = await self._destination(exchange, host, port)
        if targets is None:
            return
        path = exchange.target[len(url.scheme) + 3 + len(url.netloc):]  # as the client wrote it
        if not path.startswith("/"):
            path = "/" + path  # `http://host` or `http://host?q`
        # cachefs names the resource by its absolute URL, scheme and authority case-folded
        cache_key = f"http://{url.netloc.lower()}{path}"
        failure: NotForwarded | None = None
        for _, sockaddr in targets:
            origin = CheckedOrigin("http", sockaddr[0], port, url.netloc)
            try:
                await self.forwarder.forward(exchange, origin, path, cache_key=cache_key)
                return
            except NotForwarded as error:
                failure = error
        refuse(exchange, failure.status, f"{url.netloc}: {failure}")


@dataclass(frozen=True)
class CheckedOrigin(Origin):
    """An origin reached at an address the policy checked (`host`), named as the client named
    it (`name`: the Host field the destination gets, and the pool's key beside the address)."""

    name: str = ""

    @property
    def authority(self) -> str:
        return self.name


def split_authority(authority: str) -> tuple[str, int]:
    """`host:port` (the core checked its form) as the host, without an IPv6 literal's
    brackets, and the port."""
    host, _, port = authority.rpartition(":")
    return host.strip("[]"), int(port)


def refuse(exchange: Exchange, code: int, detail: str, headers: list[tuple[str, str]] = ()) -> None:
    """Answer an error (a plain-text body saying why); None, for the callers' `return`."""
    if not (exchange.aborted or exchange.finished):
        exchange.send_response(status_line(code), [*error_headers(), *headers], error_body(code, detail))
