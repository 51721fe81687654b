"""The forward proxy of `skitai.enable_proxy()`: a request handler, asked before the mount table,
that takes `CONNECT host:port` (HTTP/1.1 authority-form; HTTP/2 plain CONNECT, RFC 9113 8.5) and
tunnels it to the destination.

Each request is checked in this order: `Proxy-Authorization` when users are configured (407 with
a `Proxy-Authenticate` challenge), the destination's port and name, then every address the name
resolves to (403, see `destinations`); a name that does not resolve or a destination that cannot
be reached is 502, one that does not answer within `CONNECT_TIMEOUT` 504. Only then is the
CONNECT answered `200` and the connection (or HTTP/2 stream) relayed to the address that was
checked.
"""
from __future__ import annotations

import asyncio
from typing import Any

from skitai.plugin import Exchange, RequestHandler, error_body, error_headers, status_line

from .connecttunnel import Tunnel, connect
from .destinations import DestinationPolicy, Refused, Unresolvable, resolve
from .proxyauth import ProxyCredentials

CONNECT_TIMEOUT = 10.0  # seconds to reach a destination: 504 after it


class ForwardProxy(RequestHandler):
    def __init__(self, config: Any) -> None:
        settings = config.forward_proxy
        self.policy = DestinationPolicy(settings.allow, settings.deny, settings.ports, settings.public)
        self.credentials = ProxyCredentials(settings.users, settings.realm) if settings.users else None
        self.tunnel_timeout = config.proxy_tunnel_keep_alive
        self.tunnels: set[Tunnel] = set()  # open ones (tests watch them)
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        if exchange.method == "CONNECT" and exchange.connect_protocol is None:
            return self
        return None

    def handle(self, exchange: Exchange) -> None:
        task = exchange.loop.create_task(self._tunnel(exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def authorized(self, exchange: Exchange) -> bool:
        """Whether the request may use the proxy; answers 407 when not."""
        if self.credentials is None or self.credentials.user_of(exchange.header("proxy-authorization")):
            return True
        refuse(exchange, 407, "proxy authentication required", self.credentials.challenge)
        return False

    async def _tunnel(self, exchange: Exchange) -> None:
        if not self.authorized(exchange):
            return
        loop = exchange.loop
        host, port = split_authority(exchange.target)
        if not 0 < port < 65536:
            return refuse(exchange, 400, f"port {port} is not between 1 and 65535")
        try:
            targets = await asyncio.wait_for(resolve(loop, self.policy, host, port), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            return refuse(exchange, 504, f"{host} did not resolve within {CONNECT_TIMEOUT:g} s")
        except Refused as error:
            return refuse(exchange, 403, str(error))
        except Unresolvable as error:
            return refuse(exchange, 502, str(error))
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


def split_authority(authority: str) -> tuple[str, int]:
    """`host:port` (the core checked its form) as the host, without an IPv6 literal's
    brackets, and the port."""
    host, _, port = authority.rpartition(":")
    return host.strip("[]"), int(port)


def refuse(exchange: Exchange, code: int, detail: str, headers: list[tuple[str, str]] = ()) -> None:
    if not (exchange.aborted or exchange.finished):
        exchange.send_response(status_line(code), [*error_headers(), *headers], error_body(code, detail))
