"""The reverse proxy: `skitai.mount("/search", "@mysearch")` forwards every request under
`/search` to the members of the alias `@mysearch` (the manual's "Load-Balancing", note 2), and
`mount("/search", "@mysearch/search")` to `/search` on them: `/search/a?q=1` becomes
`/a?q=1`, resp. `/search/a?q=1`, on the member.

A member is picked by the gateway's balancer (smooth weighted round robin over the members that
are up, `health`); a member that cannot be reached before any of the request's body was read is
marked down and the next one is tried, and the client gets 502 (504 for a member too slow to
connect) only when none took the request. The forwarding itself is `forwarding.Forwarder`.

Before forwarding, `AliasMount.guard` (None unless a plugin sets it, see `alias_mounts`) may
refuse a request: an API gateway checks its credentials there.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from skitai.backends import Alias
from skitai.exchange import Exchange, RequestHandler
from skitai.mounting import MountError

from .forwarding import Forwarder, NotForwarded, answer_error
from .health import Balancer, MemberHealth
from .upstreamconn import Origin

log = logging.getLogger("skitai.gateway.proxy")

# A guard answers (status, headers, body) to refuse the request, or None to let it through; it
# may be a coroutine function.
Refusal = tuple[str, list[tuple[str, str]], bytes]
Guard = Callable[[Exchange, Alias], "Refusal | None | Awaitable[Refusal | None]"]


class AliasMount(RequestHandler):
    """Serves one mount point by forwarding to one HTTP alias."""

    def __init__(self, point: str, alias_name: str, base_path: str) -> None:
        self.point = point
        self.alias_name = alias_name
        self.base_path = base_path.rstrip("/")
        self.alias: Alias | None = None
        self.guard: Guard | None = None
        self.forwarder: Forwarder | None = None
        self.balancer: Balancer | None = None
        self._tasks: set = set()  # the loop keeps only weak references to tasks
        self._origins: dict[tuple[str, str, int], Origin] = {}  # one per member, made once

    def __repr__(self) -> str:
        return f"<AliasMount {self.point} -> {self.alias_name}{self.base_path}>"

    def bind(self, server: Any) -> None:
        try:
            self.alias = server.kernel.aliases.get(self.alias_name)
        except KeyError as error:
            raise MountError(f"skitai.mount({self.point!r}, {self.alias_name!r}): {error.args[0]}") from None
        if self.alias.kind not in ("http", "https"):
            raise MountError(f"skitai.mount({self.point!r}, {self.alias_name!r}): the reverse proxy forwards "
                             f"to PROTO_HTTP and PROTO_HTTPS aliases, not {self.alias.kind!r}")
        self.forwarder = Forwarder.for_server(server)
        self.balancer = balancer_for(server)

    def handle(self, exchange: Exchange) -> None:
        task = exchange.loop.create_task(self.serve(exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def serve(self, exchange: Exchange) -> None:
        try:
            if self.guard is not None:
                refusal = self.guard(exchange, self.alias)
                if hasattr(refusal, "__await__"):
                    refusal = await refusal
                if refusal is not None:
                    exchange.send_response(*refusal)
                    return
            await self._forward(exchange)
        except Exception:
            log.exception("proxy: %s %s failed (gtxid %s)", exchange.method, exchange.target,
                          exchange.transaction.gtxid)
            if not exchange.response_started:
                answer_error(exchange, 500)
            else:
                exchange.abort()

    async def _forward(self, exchange: Exchange) -> None:
        alias, health = self.alias, self.balancer.health
        target = self.target(exchange)
        scheme = "https" if alias.ssl else "http"
        failure: NotForwarded | None = None
        for member in self.balancer.order(alias):
            key = (scheme, member.host, member.port or (443 if alias.ssl else 80))
            origin = self._origins.get(key)
            if origin is None:
                origin = self._origins[key] = Origin(*key)
            try:
                await self.forwarder.forward(exchange, origin, target, cache_key=alias.name + target)
            except NotForwarded as error:
                health.failed(member)
                failure = error
                log.warning("proxy: %s %s: member %s failed, %s (gtxid %s)", exchange.method, exchange.target,
                            origin.authority, error, exchange.transaction.gtxid)
                continue
            health.succeeded(member)
            return
        answer_error(exchange, failure.status if failure is not None else 502)

    def target(self, exchange: Exchange) -> str:
        """The request target on the member: the base path, then the path under the mount point
        as the client wrote it (escapes kept), then the query."""
        raw = exchange.path
        point = self.point if self.point != "/" else ""
        if raw.startswith(point) and (len(raw) == len(point) or raw[len(point)] == "/"):
            rest = raw[len(point):]
        else:  # the client escaped part of the mount point itself
            rest = quote(exchange.path_info.encode("latin-1"), safe="/:@!$&'()*+,;=-._~")
        path = (self.base_path + rest) or "/"
        if not path.startswith("/"):
            path = "/" + path
        return f"{path}?{exchange.query}" if exchange.query else path


def balancer_for(server: Any) -> Balancer:
    """The worker's member health and balancer for proxied requests."""
    balancer = getattr(server, "skitai_gateway_balancer", None)
    if balancer is None:
        balancer = server.skitai_gateway_balancer = Balancer(MemberHealth())
    return balancer


def alias_mounts(kernel: Any) -> list[AliasMount]:
    """The reverse-proxy mounts of a kernel: a plugin sets their `guard` (in its
    `skitai_register_handlers`, once the settings are final)."""
    return [handler for handler in kernel.mounts.handlers() if isinstance(handler, AliasMount)]
