"""The connections of one worker process to its backends, and the sending of one call.

One aiohttp `ClientSession` per worker, created on the worker's event loop when the server
starts and closed when it stops: connections are pooled per member (host, port, TLS), kept
alive for `skitai.set_backend_keep_alive` seconds of idleness and at most
`MAX_CONNECTIONS_PER_MEMBER` at a time per member (more calls wait for a free one). HTTPS
backends' certificates are always verified, against the system's CAs and those of
`skitai.set_backend_ca`. Member health (see `health`) lives beside the pool, so one request's
failure is seen by the next.

aiohttp rather than httpx: a bare asyncio loop of aiohttp made six to thirty times the requests/s
of httpx's `AsyncClient` against a local upstream (`bench/gateway_clients.py`; figures in the
README's "Backend connections and HTTPS").
"""
from __future__ import annotations

import base64
import functools
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
from multidict import CIMultiDict

from skitai.backends import Alias, Member
from skitai.config import ServerConfig
from skitai.corequest import STA_NORMAL, Result

from .cachefs import CacheFS
from .cachepolicy import Response
from .codec import BadUpstreamResponse, Part, decode_body
from .health import Balancer, MemberHealth

MAX_CONNECTIONS_PER_MEMBER = 64
CONNECT_TIMEOUT = 5.0
MAX_RESPONSE_SIZE = 64 * 1024 * 1024
# answers after which a load-balanced call tries the next member, which is marked down meanwhile
FAILOVER_STATUSES = frozenset((502, 503))


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
    def __init__(self, config: ServerConfig) -> None:
        self.health = MemberHealth()
        self.cache = CacheFS.from_config(config)
        self.balancer = Balancer(self.health)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=MAX_CONNECTIONS_PER_MEMBER,
                                         keepalive_timeout=config.backend_keep_alive,
                                         ssl=verifying_context(config.backend_ca))
        self.session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                             timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        await self.session.close()

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
        try:
            response = await self._send(call, member_url(alias, member, call.target),
                                        call.auth or member_auth(member))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
            self.health.failed(member)
            raise
        if response.status in FAILOVER_STATUSES:
            self.health.failed(member)
        else:
            self.health.succeeded(member)
        return response

    async def _balanced(self, call: Call, alias: Alias, failover: bool) -> Response:
        members = self.balancer.order(alias)
        if not failover:
            members = members[:1]
        for position, member in enumerate(members):
            last = position == len(members) - 1
            try:
                response = await self._member(call, alias, member)
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
                if last:
                    raise
                continue
            if last or response.status not in FAILOVER_STATUSES:
                return response
        raise AssertionError("an alias has at least one member")  # pragma: no cover

    async def _send(self, call: Call, url: str, auth: tuple[str, str] | None) -> Response:
        timeout = client_timeout(call.timeout)
        headers = call.headers
        if auth is not None and "Authorization" not in headers:
            headers = headers.copy()
            headers["Authorization"] = basic_authorization(*auth)
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


def form_data(parts: tuple[Part, ...]) -> aiohttp.MultipartWriter:
    """A multipart/form-data body, made afresh for each attempt (a writer is sent once)."""
    writer = aiohttp.MultipartWriter("form-data")
    for part in parts:
        payload = writer.append(part.value, {"Content-Type": part.content_type} if part.content_type else None)
        names = {"name": part.name} if part.filename is None else {"name": part.name, "filename": part.filename}
        payload.set_content_disposition("form-data", **names)
    return writer


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
    return f"{'https' if alias.ssl else 'http'}://{member.address}{path}"


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
