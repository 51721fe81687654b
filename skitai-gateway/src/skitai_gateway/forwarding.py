"""The forwarding engine: one exchange relayed to one origin (scheme, host, port) and target.

Used by the reverse proxy (`skitai.mount("/x", "@alias")`, see `reverseproxy`) for each member
it tries, and meant for any other handler that forwards (a forward proxy's absolute-form
requests). It runs on the event loop thread:

* the request goes to the member as HTTP/1.1, re-framed by the proxy (Content-Length when the
  client's body had a declared length, else chunked; see `proxyheaders` for the fields), its
  body streamed from `exchange.body.read_async` with the member's socket drained between
  pieces, so neither direction holds more than a few hundred KB per exchange; a chunked body
  ends with the client's trailer fields (`exchange.body.trailers`);
* the answer streams back with `send_data` and `exchange.drain()` (the member's socket is
  paused meanwhile), its trailer fields passed on (`set_trailers`);
* a WebSocket upgrade (HTTP/1.1 `Upgrade`, or an RFC 8441 extended CONNECT on HTTP/2) is
  forwarded as an HTTP/1.1 upgrade and, once the member switched, both sides become a byte
  tunnel (`exchange.open_tunnel`);
* with cachefs on (`skitai.enable_cachefs`), a GET or HEAD is answered by `CacheFS.fetch` under
  the caller's cache key, by the same rules as corequests: a fresh stored answer is served, a
  stale one revalidated; an answer that may be stored and has a Content-Length of at most
  `MAX_CACHED_BODY` is read whole (that is the price of storing it), any other streams through;
* a member that cannot be reached, or a pooled connection it had closed, before any of the
  request's body was read raises `NotForwarded`, so the caller may try another member;
  afterwards a failure is answered here: 502, or 504 when the member sent nothing for
  `config.proxy_keep_alive` seconds (a response already started is cut instead).
"""
from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

from skitai.body import ClientDisconnected
from skitai.config import ServerConfig
from skitai.exchange import Exchange
from skitai.fields import FORBIDDEN_TRAILER_FIELDS
from skitai.http1.framing import last_chunk
from skitai.statuses import error_body, error_headers, status_line
from skitai.websocket.handshake import asks_for_websocket

from .cachefs import CacheFS
from .cachepolicy import Response, passes_through, storable
from .proxyheaders import is_trusted, request_headers, response_headers, trusted_networks
from .upstreamconn import (
    Origin,
    ResponseHead,
    StaleConnection,
    UpstreamConnection,
    UpstreamError,
    UpstreamPool,
    UpstreamTimeout,
)

log = logging.getLogger("skitai.gateway.proxy")

BODY_PIECE = 64 * 1024
MAX_CACHED_BODY = 8 * 1024 * 1024


class NotForwarded(Exception):
    """Nothing of the request reached the member and nothing was answered: another member may
    take it. `status` (502 or 504) is what to answer when none does."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class _Streamed(Exception):
    """The member's answer is not one to store: it streams to the client instead of into the
    cache (raised through `CacheFS.fetch`, which then stores nothing)."""

    def __init__(self, conn: UpstreamConnection, response: ResponseHead) -> None:
        super().__init__("not stored")
        self.conn = conn
        self.response = response


class Forwarder:
    """One per worker process (see `for_server`): the member connection pool and the settings."""

    def __init__(self, config: ServerConfig) -> None:
        self.channel_timeout = config.proxy_keep_alive
        self.tunnel_timeout = config.proxy_tunnel_keep_alive
        self.trusted = trusted_networks(config.proxy_trusted)
        self.pool = UpstreamPool(config.backend_keep_alive, config.backend_ca,
                                 connect_timeout=min(5.0, config.proxy_keep_alive))

        self.cache: CacheFS | None = None

    @classmethod
    def for_server(cls, server: Any) -> "Forwarder":
        """The worker's forwarder, made on first use (closed by the plugin's `skitai_server_stop`)."""
        forwarder = getattr(server, "skitai_gateway_forwarder", None)
        if forwarder is None:
            forwarder = server.skitai_gateway_forwarder = cls(server.config)
            forwarder.cache = CacheFS.for_server(server)
        return forwarder

    def close(self) -> None:
        self.pool.close()

    async def forward(self, exchange: Exchange, origin: Origin, target: str, cache_key: str | None = None) -> None:
        """Relay `exchange` to `origin` as a request for `target` (path and query) and its answer
        back. Raises `NotForwarded` when the member could not take it and the exchange is
        untouched; answers 502/504 itself once that is no longer so. `cache_key` names the
        resource for cachefs (`@alias/path?query`, or an absolute URL); None keeps the
        request out of the cache."""
        tunnel = asks_for_websocket(exchange)
        length = None if tunnel else body_length(exchange)
        if (self.cache is not None and cache_key is not None and not tunnel and length is None
                and not passes_through(exchange.method, exchange.headers)):
            await self._through_cache(exchange, origin, target, cache_key)
            return
        head = self._head(exchange, origin, target, tunnel, length)
        conn = await self._connect(exchange, origin, head)
        body_task = None
        try:
            if length:  # a declared length of 0 is sent as such, with no body to read
                body_task = self._start_body(exchange, conn, length)
            try:
                response = await conn.read_head(self.channel_timeout)
            except StaleConnection:
                if body_task is not None:
                    raise  # the body went into the closed connection: it cannot go again
                # the idle connection had been closed under us: once more on a fresh one
                conn.abort()
                conn = await self._connect(exchange, origin, head, fresh=True)
                response = await conn.read_head(self.channel_timeout)
            if tunnel and response.status == 101:
                self._open_tunnel(exchange, conn, response)
                conn = None
                return
            await self._relay_response(exchange, conn, response)
        except UpstreamTimeout as error:
            self._fail(exchange, 504, origin, error)
        except (UpstreamError, OSError) as error:
            if isinstance(error, ClientDisconnected):
                exchange.abort()
            else:
                self._fail(exchange, 502, origin, error)
        finally:
            if body_task is not None and not body_task.done():
                body_task.cancel()
                if conn is not None:
                    conn.abort()  # the request was not all sent: the connection is unusable
            elif body_task is not None and body_task.exception() is not None and conn is not None:
                conn.abort()
            if conn is not None:
                self.pool.release(conn)

    # cachefs
    async def _through_cache(self, exchange: Exchange, origin: Origin, target: str, key: str) -> None:
        async def send(fields: dict[str, str]) -> Response:
            conn = await self._connect(exchange, origin, self._head(exchange, origin, target, False, None, fields))
            try:
                try:
                    head = await conn.read_head(self.channel_timeout)
                except StaleConnection:
                    conn.abort()
                    conn = await self._connect(exchange, origin,
                                               self._head(exchange, origin, target, False, None, fields), fresh=True)
                    head = await conn.read_head(self.channel_timeout)
                answer = Response(head.status, head.reason, tuple(head.headers), b"")
                length = _content_length(head.headers)
                small = length is not None and length <= MAX_CACHED_BODY and not _is_chunked(head.headers)
                if head.status != 304 and not (small and storable(exchange.method, exchange.headers, answer)):
                    raise _Streamed(conn, head)
                pieces = []
                while data := await conn.read_body(self.channel_timeout):
                    pieces.append(data)
            except _Streamed:
                raise
            except BaseException:
                conn.abort()
                raise
            self.pool.release(conn)
            return Response(head.status, head.reason, tuple(head.headers), b"".join(pieces))

        try:
            answer = await self.cache.fetch(exchange.method, key, exchange.headers, True, send)
        except _Streamed as streamed:
            try:
                await self._relay_response(exchange, streamed.conn, streamed.response)
            except (UpstreamError, OSError) as error:
                self._fail(exchange, 502, origin, error)
            finally:
                self.pool.release(streamed.conn)
            return
        except UpstreamTimeout as error:
            self._fail(exchange, 504, origin, error)
            return
        except (UpstreamError, OSError) as error:
            self._fail(exchange, 502, origin, error)
            return
        headers = response_headers(list(answer.headers), "1.1")
        if exchange.method == "HEAD":
            headers.extend((n, v) for n, v in answer.headers if n.lower() == "content-length")
        exchange.send_response(f"{answer.status} {answer.reason or 'Status'}", headers, answer.body)

    # the request
    def _head(self, exchange: Exchange, origin: Origin, target: str, tunnel: bool, length: int | None,
              extra: dict[str, str] | None = None) -> bytes:
        host = exchange.header("host")
        client = exchange.client[0] if exchange.client else ""
        fields = request_headers(exchange.headers, client=client, scheme=exchange.scheme, host=host,
                                 version=exchange.version,
                                 trusted=bool(self.trusted) and is_trusted(client, self.trusted),
                                 upstream_host=origin.authority)
        fields.extend(exchange.transaction.call_headers())
        if extra:
            fields.extend(extra.items())
        method = exchange.method
        if tunnel:
            method = "GET"
            fields = [(n, v) for n, v in fields if not n.lower().startswith("sec-websocket-key")]
            key = exchange.header("sec-websocket-key") or base64.b64encode(os.urandom(16)).decode()
            fields += [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", key)]
            if exchange.header("sec-websocket-version") is None:
                fields.append(("Sec-WebSocket-Version", "13"))
        elif length is not None:
            fields.append(("Content-Length", str(length)) if length >= 0 else ("Transfer-Encoding", "chunked"))
        fields = "".join([f"{name}: {value}\r\n" for name, value in fields])
        return f"{method} {target} HTTP/1.1\r\n{fields}\r\n".encode("latin-1")

    async def _connect(self, exchange: Exchange, origin: Origin, head: bytes,
                       fresh: bool = False) -> UpstreamConnection:
        try:
            conn = (None if fresh else self.pool.take_idle(origin)) or await self.pool.acquire(origin, fresh=fresh)
        except UpstreamTimeout as error:
            raise NotForwarded(f"{origin.authority}: {error}", 504) from error
        except OSError as error:
            raise NotForwarded(f"{origin.authority}: {error.strerror or error}") from error
        conn.begin(exchange.method)
        try:
            conn.write(head)
        except UpstreamError as error:
            conn.abort()
            raise NotForwarded(f"{origin.authority}: {error}") from error
        return conn

    def _start_body(self, exchange: Exchange, conn: UpstreamConnection, length: int) -> asyncio.Task:
        """Send the body beside the wait for the answer (a member may answer before reading
        it); a body that cannot be sent (the client left, its framing lied) ends the exchange
        with the member, which the wait then sees."""
        task = exchange.loop.create_task(self._send_body(exchange, conn, length))

        def done(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                conn.abort()
        task.add_done_callback(done)
        return task

    async def _send_body(self, exchange: Exchange, conn: UpstreamConnection, length: int) -> None:
        """Stream the request body to the member, framed as the head said (-1: chunked, which
        carries the request's trailers; a body sent with a Content-Length cannot)."""
        chunked = length < 0
        sent = 0
        while True:
            data = await exchange.body.read_async(BODY_PIECE)
            if not data:
                break
            sent += len(data)
            if not chunked and sent > length:
                raise UpstreamError("the request body is longer than its Content-Length")
            conn.write(b"%x\r\n%b\r\n" % (len(data), data) if chunked else data)
            await conn.drain()
        if chunked:
            # the client's trailer fields (`body.trailers`, complete now) end the chunked body
            conn.write(last_chunk(exchange.body.trailers))
        elif sent != length:
            raise UpstreamError("the request body is shorter than its Content-Length")

    # the answer
    async def _relay_response(self, exchange: Exchange, conn: UpstreamConnection, response: ResponseHead) -> None:
        headers = response_headers(response.headers, response.version)
        if exchange.method != "HEAD" and response.status not in (204, 304) and not response.until_close:
            length, chunked = _framing(response.headers)
            if length is not None and not chunked:
                headers.append(("Content-Length", str(length)))
        elif exchange.method == "HEAD":
            headers.extend((n, v) for n, v in response.headers if n.lower() == "content-length")
        status = f"{response.status} {response.reason or 'Status'}"
        if conn.complete and not conn.trailers:  # the whole answer came with its head: one write
            exchange.send_response(status, headers, conn.take_body())
            return
        exchange.send_head(status, headers)
        try:
            while True:
                data = await conn.read_body(self.channel_timeout)
                if not data:
                    break
                exchange.send_data(data)
                await exchange.drain()
        except (UpstreamError, asyncio.CancelledError) as error:
            if isinstance(error, UpstreamError):
                log.warning("proxy: %s %s: the member's answer broke off after it started: %s (gtxid %s)",
                            exchange.method, exchange.target, error, exchange.transaction.gtxid)
            conn.abort()
            exchange.abort()
            if isinstance(error, asyncio.CancelledError):
                raise
            return
        trailers = [(name.lower(), value) for name, value in conn.trailers
                    if name.lower() not in FORBIDDEN_TRAILER_FIELDS]
        if trailers:
            exchange.set_trailers(trailers)
        exchange.finish()

    def _fail(self, exchange: Exchange, status: int, origin: Origin, error: BaseException) -> None:
        log.warning("proxy: %s %s -> %s: %s %s (gtxid %s)", exchange.method, exchange.target,
                    origin.authority, status, error, exchange.transaction.gtxid)
        if exchange.response_started:
            exchange.abort()
        else:
            answer_error(exchange, status)

    # tunnels
    def _open_tunnel(self, exchange: Exchange, conn: UpstreamConnection, response: ResponseHead) -> None:
        from .tunnel import Splice

        passed = [(n, v) for n, v in response.headers
                  if n.lower() in ("sec-websocket-protocol", "sec-websocket-extensions")]
        if exchange.connect_protocol is not None:
            status, headers = "200 OK", passed
        else:
            accept = [(n, v) for n, v in response.headers if n.lower() == "sec-websocket-accept"]
            status = "101 Switching Protocols"
            headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), *accept, *passed]
        splice = Splice(conn, self.tunnel_timeout)
        exchange.open_tunnel(status, headers, splice.front)


def answer_error(exchange: Exchange, status: int) -> None:
    """A short plain-text error answer (502, 504, 403 ...)."""
    exchange.send_response(status_line(status), error_headers(), error_body(status))


def body_length(exchange: Exchange) -> int | None:
    """How the request's body goes to the member: None when it has none, its declared length
    (0 included), or -1 for a body of unknown length (chunked on HTTP/1.1, an HTTP/2 stream
    without Content-Length, or one announcing trailers with a `Trailer` field, which only
    chunked framing carries), sent chunked."""
    chunked = content_length = None
    http2 = exchange.version.startswith("2")
    for name, value in exchange.headers:
        if name == "transfer-encoding" or (http2 and name == "trailer"):
            chunked = True
        elif name == "content-length" and content_length is None:
            content_length = value
    if chunked:
        return -1
    if content_length is not None and content_length.isdigit():
        return int(content_length)
    if http2:
        body = exchange.body
        return -1 if not getattr(body, "complete", True) or getattr(body, "received", 0) else None
    return None


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length" and value.strip().isdigit():
            return int(value)
    return None


def _framing(headers: list[tuple[str, str]]) -> tuple[int | None, bool]:
    """(`_content_length`, `_is_chunked`) of `headers` in one pass: every relayed answer asks."""
    length, chunked = None, False
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            if length is None and value.strip().isdigit():
                length = int(value)
        elif lower == "transfer-encoding":
            chunked = True
    return length, chunked


def _is_chunked(headers: list[tuple[str, str]]) -> bool:
    return any(name.lower() == "transfer-encoding" for name, _ in headers)
