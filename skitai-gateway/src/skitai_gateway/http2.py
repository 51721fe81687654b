"""HTTP/2 to the members of the gateway's own alias kinds `PROTO_H2` ("h2") and `PROTO_H2C` ("h2c").

aiohttp, the gateway's client, speaks HTTP/1.1 only; httpx (with the `h2` package) speaks
HTTP/2 but makes a sixth of aiohttp's requests/s or less (`bench/gateway_clients.py`). So HTTP/2
is the script's choice for the aliases whose members gain from it, never a switch made behind
its back for every HTTPS member that offers h2 through ALPN:

* `"h2"`: HTTPS, offering h2 then http/1.1 through ALPN, so a member that speaks HTTP/2 gets it
  and one that does not still answers over HTTP/1.1;
* `"h2c"`: cleartext HTTP/2 with prior knowledge (RFC 9113 3.3): every member must speak it (a
  member that does not is a 502).

One `httpx.AsyncClient` per member, made on the worker's event loop at the member's first call
and closed when the server stops: its HTTP/2 connection carries the concurrent calls as streams,
and at most `MAX_CONNECTIONS_PER_MEMBER` connections are opened to the member, kept for the
backend keep-alive. Certificates are verified as for PROTO_HTTPS. A call gives the same
`Response` as the HTTP/1.1 path, so cachefs, load balancing, health and the fault statuses are
the same (connect failures fail over; the others map as in `calls.HttpMethod.map_error`).
"""
from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx

from skitai.backends import Alias, Member

from .cachepolicy import Response
from .codec import BadUpstreamResponse, Part, form_data
from .names import PROTO_H2C

# errors of a call that mean the member could not be reached at all (fail-over, health)
CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)


class Http2Members:
    def __init__(self, keep_alive: float, max_connections: int, connect_timeout: float,
                 context: ssl.SSLContext) -> None:
        self.limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                                   keepalive_expiry=keep_alive)
        self.connect_timeout = connect_timeout
        self.context = context
        self._clients: dict[tuple[str, str], httpx.AsyncClient] = {}

    def _client(self, alias: Alias, member: Member) -> httpx.AsyncClient:
        key = (alias.kind, member.address)
        client = self._clients.get(key)
        if client is None:
            cleartext = alias.kind == PROTO_H2C
            client = httpx.AsyncClient(http1=not cleartext, http2=True, verify=self.context, limits=self.limits,
                                       follow_redirects=True, trust_env=False)
            self._clients[key] = client
        return client

    async def send(self, alias: Alias, member: Member, url: str, method: str, params: Any,
                   body: bytes | tuple[Part, ...] | None, headers: Any, timeout: float, max_size: int) -> Response:
        """One call to `member` (`url` is the member's own), its whole answer read up to `max_size`
        bytes within `timeout` seconds (TimeoutError past it)."""
        client = self._client(alias, member)
        fields = list(headers.items())
        if isinstance(body, tuple):
            content_type, body = await multipart(body)
            fields.append(("Content-Type", content_type))
        limits = httpx.Timeout(timeout, connect=min(timeout, self.connect_timeout))
        request = client.build_request(method, url, params=params, content=body, headers=fields, timeout=limits)
        response, raw = await asyncio.wait_for(self._exchange(client, request, max_size), timeout)
        return Response(response.status_code, response.reason_phrase, tuple(response.headers.multi_items()), raw)

    @staticmethod
    async def _exchange(client: httpx.AsyncClient, request: httpx.Request,
                        max_size: int) -> tuple[httpx.Response, bytes]:
        response = await client.send(request, stream=True)
        try:
            return response, await read_limited(response, max_size)
        finally:
            await response.aclose()

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


async def read_limited(response: httpx.Response, max_size: int) -> bytes:
    """The whole (decoded) body, refused as soon as it passes `max_size` bytes."""
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit() and int(length) > max_size:
        raise BadUpstreamResponse(f"the backend's body of {length} bytes is over the call's max_size of {max_size}")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_size:
            raise BadUpstreamResponse(f"the backend's body passed the call's max_size of {max_size} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def multipart(parts: tuple[Part, ...]) -> tuple[str, bytes]:
    """`was.upload`'s parts as the same multipart/form-data body the HTTP/1.1 path sends (aiohttp's
    writer, serialized): its Content-Type (with the boundary) and its bytes."""
    writer = form_data(parts)
    chunks: list[bytes] = []

    class Sink:
        async def write(self, chunk: bytes) -> None:
            chunks.append(bytes(chunk))

    await writer.write(Sink())
    return writer.headers["Content-Type"], b"".join(chunks)
