"""The connections of one worker process to its backends, and the sending of one call.

One aiohttp `ClientSession` per worker, created on the worker's event loop at the first call
(the services are made in the thread of the request that uses one first, see `services`) and
closed when the server stops: connections are pooled per member (host, port, TLS), kept
alive for `skitai.set_backend_keep_alive` seconds of idleness and at most
`MAX_CONNECTIONS_PER_MEMBER` at a time per member (more calls wait for a free one). HTTPS
backends' certificates are always verified, against the system's CAs and those of
`skitai.set_backend_ca`. Member health (see `health`) lives beside the pool, so one request's
failure is seen by the next.

aiohttp rather than httpx: a bare asyncio loop of aiohttp made six to thirty times the requests/s
of httpx's `AsyncClient` against a local upstream (`bench/gateway_clients.py`; figures in the
README's "Backend connections and HTTPS"). Members of the HTTP/2 kinds "h2" and "h2c", which
aiohttp cannot speak to, go through httpx (`http2.Http2Members`) with the same health, fail-over
and `Response`.
"""
from __future__ import annotations

import base64
import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDict

from skitai.backends import Alias, Member
from skitai.config import ServerConfig
from skitai.corequest import STA_NORMAL, Result

from .cachefs import CacheFS
from .cachepolicy import Response
from .codec import BadUpstreamResponse, Part, decode_body, form_data
from .health import Balancer, MemberHealth
from .http2 import CONNECT_ERRORS as HTTP2_CONNECT_ERRORS
from .http2 import Http2Members
from .names import HTTP2_KINDS, PROTO_H2

MAX_CONNECTIONS_PER_MEMBER = 64
CONNECT_TIMEOUT = 5.0
MAX_RESPONSE_SIZE = 64 * 1024 * 1024
# answers after which a load-balanced call tries the next member, which is marked down meanwhile
FAILOVER_STATUSES = frozenset((502, 503))
T = TypeVar("T")
# errors of a call that mean the member could not be reached at all, by either client
CONNECT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, *HTTP2_CONNECT_ERRORS)


@dataclass(frozen=True)
class Call:
    """One HTTP request as the app asked for it; `target` is an absolute URL or, for an alias,
    the path after `@name`."""

    method: str
    target: str
    params: Any
    body: bytes | tuple[Part, ...] | None  # parts: multipart/form-data
    headers: CIMultiDict
    auth: tuple[str, str] | None  # (user, password) for HTTP Basic
    timeout: float
    max_size: int
    use_cache: Any = True  # for cachefs: True, False, or a timestamp before which stored answers are stale


class Upstreams:
    def __init__(self, config: ServerConfig, cache: CacheFS | None = None) -> None:
        self.health = MemberHealth()
        self.cache = cache if cache is not None else CacheFS.from_config(config)
        self.balancer = Balancer(self.health)
        self.keep_alive = config.backend_keep_alive
        self.context = verifying_context(config.backend_ca)
        self._session: aiohttp.ClientSession | None = None
        self.http2 = Http2Members(self.keep_alive, MAX_CONNECTIONS_PER_MEMBER, CONNECT_TIMEOUT, self.context)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pool of HTTP/1.1 connections; made at its first use, which is on the worker's
        loop (aiohttp binds it to the running loop): read it in coroutines only."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=MAX_CONNECTIONS_PER_MEMBER,
                                             keepalive_timeout=self.keep_alive, ssl=self.context)
            self._session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                                  timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.http2.close()

    # the three ways of calling
    async def direct(self, call: Call) -> Result:
        """An absolute URL."""
        return await self._cached(call, call.target, lambda call: self._send(call, call.target, call.auth))

    async def member(self, call: Call, alias: Alias, member: Member) -> Result:
        """One given member of an alias (cached as the member's own URL)."""
        return await self._cached(call, member_url(alias, member, call.target),
                                  lambda call: self._member(call, alias, member))

    async def balanced(self, call: Call, alias: Alias, failover: bool) -> Result:
        """A member of `alias` picked by weight among those up; with `failover`, the next one
        after a connect failure or a 502/503 answer, until one answers or all were tried. Cached
        as `@alias/path`: the members serve the same resources."""
        return await self._cached(call, alias.name + call.target,
                                  lambda call: self._balanced(call, alias, failover))

    async def _cached(self, call: Call, url: str, send: Callable[[Call], Awaitable[Response]]) -> Result:
        """The call's answer through cachefs when it is on, as a Result."""
        if self.cache is None:
            response = await send(call)
        else:
            request_headers = list(call.headers.items())
            if call.auth is not None:  # the app's credentials; a member's are the gateway's own
                request_headers.append(("Authorization", basic_authorization(*call.auth)))
            response = await self.cache.fetch(call.method, cache_url(url, call.params), request_headers,
                                              call.use_cache, lambda fields: send(with_fields(call, fields)))
        data = decode_body(response.body, response.header("Content-Type"))
        return Result(STA_NORMAL, response.status, response.reason, data, list(response.headers))

    async def _member(self, call: Call, alias: Alias, member: Member) -> Response:
        """One given member of an alias; its outcome updates the member's health."""
        return await self.watched(member, lambda: self._attempt(call, alias, member), _response_status)

    async def _attempt(self, call: Call, alias: Alias, member: Member) -> Response:
        url, auth = member_url(alias, member, call.target), call.auth or member_auth(member)
        if alias.kind in HTTP2_KINDS:
            return await self.http2.send(alias, member, url, call.method, call.params, call.body,
                                         with_auth(call.headers, auth), call.timeout, call.max_size)
        return await self._send(call, url, auth)

    async def _balanced(self, call: Call, alias: Alias, failover: bool) -> Response:
        return await self.over_members(alias, failover, lambda member: self._attempt(call, alias, member),
                                       _response_status)

    # member health and fail-over, for any exchange with a member (HTTP calls, WebSockets)
    async def watched(self, member: Member, attempt: Callable[[], Awaitable[T]], status: Callable[[T], int]) -> T:
        """`attempt()`'s outcome, which marks the member down (a connect failure, a 502/503
        `status` of the outcome) or up."""
        try:
            outcome = await attempt()
        except CONNECT_ERRORS:
            self.health.failed(member)
            raise
        if status(outcome) in FAILOVER_STATUSES:
            self.health.failed(member)
        else:
            self.health.succeeded(member)
        return outcome

    async def over_members(self, alias: Alias, failover: bool, attempt: Callable[[Member], Awaitable[T]],
                           status: Callable[[T], int]) -> T:
        """`attempt(member)` on the member the balancer picks; with `failover`, on the next one
        after a connect failure or a 502/503 outcome, until one answers or all were tried (the
        last outcome stands)."""
        members = self.balancer.order(alias)
        if not failover:
            members = members[:1]
        for position, member in enumerate(members):
            last = position == len(members) - 1
            try:
                outcome = await self.watched(member, functools.partial(attempt, member), status)
            except CONNECT_ERRORS:
                if last:
                    raise
                continue
            if last or status(outcome) not in FAILOVER_STATUSES:
                return outcome
        raise AssertionError("an alias has at least one member")  # pragma: no cover

    async def _send(self, call: Call, url: str, auth: tuple[str, str] | None) -> Response:
        timeout = client_timeout(call.timeout)
        headers = with_auth(call.headers, auth)
        body = form_data(call.body) if isinstance(call.body, tuple) else call.body
        async with self.session.request(call.method, url, params=call.params, data=body, headers=headers,
                                        timeout=timeout) as response:
            raw = await read_limited(response, call.max_size)
            return Response(response.status, response.reason or "", tuple(response.headers.items()), raw)


@functools.lru_cache(maxsize=64)
def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """The aiohttp timeout of a call of `seconds`, made once per value: building the (attrs,
    frozen) object took a few microseconds of the loop's time on every call, and calls use a
    handful of timeouts."""
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, CONNECT_TIMEOUT))


async def read_limited(response: aiohttp.ClientResponse, max_size: int) -> bytes:
    """The whole body, refused (BadUpstreamResponse) as soon as it passes `max_size` bytes: an
    endless body costs at most that much memory."""
    if response.content_length is not None and response.content_length > max_size:
        raise BadUpstreamResponse(f"the backend's body of {response.content_length} bytes is over the "
                                  f"call's max_size of {max_size}")
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > max_size:
            raise BadUpstreamResponse(f"the backend's body passed the call's max_size of {max_size} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _response_status(response: Response) -> int:
    return response.status


def with_auth(headers: CIMultiDict, auth: tuple[str, str] | None) -> CIMultiDict:
    """The call's headers with HTTP Basic credentials, unless they carry their own."""
    if auth is None or "Authorization" in headers:
        return headers
    headers = headers.copy()
    headers["Authorization"] = basic_authorization(*auth)
    return headers


def with_fields(call: Call, fields: dict[str, str]) -> Call:
    """The call with more request fields (cachefs's validators)."""
    if not fields:
        return call
    headers = call.headers.copy()
    headers.update(fields)
    return replace(call, headers=headers)


def cache_url(url: str, params: Any) -> str:
    """What cachefs knows the call by: its URL with the query `params` add."""
    if not params:
        return url
    query = params if isinstance(params, str) else urlencode(params, doseq=True)
    return f"{url}{'&' if '?' in url else '?'}{query}"


def member_url(alias: Alias, member: Member, path: str) -> str:
    secure = alias.ssl or alias.kind == PROTO_H2
    return f"{'https' if secure else 'http'}://{member.address}{path}"


def member_auth(member: Member) -> tuple[str, str] | None:
    """The member's `user:password@`, sent as HTTP Basic credentials."""
    return (member.user, member.password) if member.user else None


def basic_authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def verifying_context(cafile: str | None) -> ssl.SSLContext:
    """Certificates and host names verified against the system's CAs, plus `cafile`'s."""
    context = ssl.create_default_context()
    if cafile:
        context.load_verify_locations(cafile=cafile)
    return context
