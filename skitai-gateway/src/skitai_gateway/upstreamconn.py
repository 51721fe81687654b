"""HTTP/1.1 connections from the proxy to members, and their pool (one per worker process).

A raw asyncio protocol with httptools (llhttp, the core's own parser) rather than aiohttp's
client: the proxy needs what aiohttp keeps to itself — the response's trailer section, the bytes
after a `101 Switching Protocols` (a WebSocket tunnelled to the member), writing the request's
framing itself (so no ambiguous Content-Length/Transfer-Encoding can pass) and pausing the
member's socket while the client does not read. It is also the cheaper path per request
(figures in bench/README.md, "proxy-hello").

Back-pressure: the response body is buffered up to `HIGH_WATER` bytes, then the member's socket
stops being read until the proxy took it under `LOW_WATER`; writes wait (`drain`) while the
transport's buffer is full.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from functools import cached_property

import httptools

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
MAX_IDLE_PER_ORIGIN = 64


class UpstreamError(Exception):
    """The member broke the exchange: refused, reset, closed early, or sent no HTTP."""


class UpstreamTimeout(UpstreamError):
    """The member sent nothing for the channel timeout."""


class StaleConnection(UpstreamError):
    """A pooled connection the member had closed (it idled out): nothing was answered, so the
    request may go again on a new connection."""


@dataclass(frozen=True)
class Origin:
    """Where a request is forwarded: `scheme` "http" or "https", `host`, `port`."""

    scheme: str
    host: str
    port: int

    @cached_property  # computed once: it goes into every forwarded request's Host field
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass
class ResponseHead:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    version: str
    # neither Content-Length nor chunked: the body ends when the member closes
    until_close: bool


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.reused = False
        self.idle_since = 0.0
        self.lost = False
        self._error: BaseException | None = None
        self._can_write = True
        self._write_waiter: asyncio.Future | None = None
        self._parser = None
        self._head: ResponseHead | None = None
        self._fields: list[tuple[str, str]] = []
        self._reason = ""
        self._in_head = True
        self._skip_body = False
        self._received_any = False
        self.trailers: list[tuple[str, str]] = []
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self.complete = False
        self.keep_alive = False
        self._waiter: asyncio.Future | None = None
        # after a 101: the tunnel's protocol, and what came before it took over
        self.tunnel: asyncio.Protocol | None = None
        self.rest = b""

    # connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.tunnel is not None:
            self.tunnel.connection_lost(exc)
            return
        if self._head is not None and self._head.until_close and not self.complete and self._error is None:
            self.complete = True  # the body that ends with the connection has ended
        elif not self.complete and self._error is None:
            if not self._received_any and self.reused:
                self._error = StaleConnection("the pooled connection was closed by the member")
            else:
                self._error = UpstreamError(f"the member closed the connection ({exc or 'end of stream'})")
        self._wake()
        self._wake_writer()

    def eof_received(self) -> bool | None:
        if self.tunnel is not None:
            return self.tunnel.eof_received()
        return None

    def pause_writing(self) -> None:
        self._can_write = False
        if self.tunnel is not None:
            self.tunnel.pause_writing()

    def resume_writing(self) -> None:
        self._can_write = True
        self._wake_writer()
        if self.tunnel is not None:
            self.tunnel.resume_writing()

    def _wake_writer(self) -> None:
        waiter = self._write_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self.lost:
            raise self._error or UpstreamError("the member closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        while not self._can_write and not self.lost:
            self._write_waiter = self.loop.create_future()
            try:
                await self._write_waiter
            finally:
                self._write_waiter = None
        if self.lost and self.tunnel is None and not self.complete:
            raise self._error or UpstreamError("the member closed the connection")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # one response
    def begin(self, method: str) -> None:
        """Expect the answer to a request just written. The parser of the previous answer goes on
        (llhttp starts the next message after a complete one); a HEAD's answer drops it
        (`on_headers_complete`: a response parser cannot know that answer has no body). A
        parser per request is a measurable part of a proxied request's cost."""
        if self._parser is None:
            self._parser = httptools.HttpResponseParser(self)
        self._head = None
        self._fields = []
        self._in_head = True
        self._skip_body = method == "HEAD"
        self._received_any = False
        self.trailers = []
        self._body.clear()
        self._buffered = 0
        self.complete = False
        self.keep_alive = False

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.data_received(data)
            return
        self._received_any = True
        if self._parser is None or self._error is not None:
            self._error = self._error or UpstreamError("the member sent bytes nobody asked for")
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.rest = data[upgrade.args[0]:] if upgrade.args else b""
            self.complete = True
        except httptools.HttpParserError as error:
            self._error = UpstreamError(f"the member's answer is no valid HTTP/1.1: {error}")
            self.abort()
        except UpstreamError as error:
            self._error = error
            self.abort()
        self._wake()

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self._reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        field = (name.decode("latin-1"), (value or b"").decode("latin-1").strip(" \t"))
        if self._in_head:
            self._fields.append(field)
        else:
            self.trailers.append(field)

    def on_headers_complete(self) -> None:
        parser = self._parser
        status = parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._fields, self._reason = [], ""  # an interim answer (100 Continue): not relayed
            return
        self._in_head = False
        until_close = (status not in (204, 304) and not self._skip_body and status != 101
                       and not any(name.lower() in _FRAMING for name, _ in self._fields))
        self._head = ResponseHead(status, self._reason.strip(), self._fields, parser.get_http_version(),
                                  until_close)
        self._reason = ""
        self.keep_alive = parser.should_keep_alive()
        if self._skip_body:
            self.complete = True  # a HEAD's answer has no body, whatever its Content-Length says
            self._parser = None

    def on_body(self, body: bytes) -> None:
        if self._head is None:
            return  # the body of an interim answer
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self._head is not None:
            self.complete = True
            self.keep_alive = self.keep_alive and self._parser.should_keep_alive()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def _wait(self, timeout: float) -> None:
        """Until the member sends something (or fails); a timer rather than `wait_for`, which
        costs a task per wait on the hot path."""
        waiter = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter)
        try:
            if not await waiter:
                raise UpstreamTimeout(f"the member sent nothing for {timeout:g} s")
        finally:
            timer.cancel()
            self._waiter = None

    async def read_head(self, timeout: float) -> ResponseHead:
        while self._head is None:
            if self._error is not None:
                raise self._error
            await self._wait(timeout)
        return self._head

    async def read_body(self, timeout: float) -> bytes:
        """The next piece of the response body, b"" at its end."""
        while not self._body:
            if self._error is not None:
                raise self._error
            if self.complete:
                return b""
            await self._wait(timeout)
        data = self._body.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered < LOW_WATER:
            self._paused = False
            self.transport.resume_reading()
        return data

    def take_body(self) -> bytes:
        """All of the body buffered so far (the whole of it once `complete`)."""
        data = b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        return data

    @property
    def reusable(self) -> bool:
        return (self.complete and self.keep_alive and not self.lost and self._error is None
                and self.tunnel is None and not self._body and self._head is not None
                and not self._head.until_close and self._head.status != 101)


_FRAMING = frozenset(("content-length", "transfer-encoding"))


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(False)


class UpstreamPool:
    """Idle keep-alive connections per origin, closed after `keep_alive` seconds of idleness."""

    def __init__(self, keep_alive: float, ca_file: str | None = None, connect_timeout: float = 5.0) -> None:
        self.keep_alive = keep_alive
        self.connect_timeout = connect_timeout
        self._idle: dict[Origin, deque[UpstreamConnection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._ca_file = ca_file

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
            if self._ca_file:
                self._ssl.load_verify_locations(cafile=self._ca_file)
        return self._ssl

    def take_idle(self, origin: Origin) -> UpstreamConnection | None:
        """A pooled connection to `origin` that is still open, or None (no await: the common
        case of a busy proxy costs no coroutine)."""
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.lost and now - conn.idle_since < self.keep_alive:
                conn.reused = True
                return conn
            conn.close()
        return None

    async def acquire(self, origin: Origin, fresh: bool = False) -> UpstreamConnection:
        """A pooled connection to `origin` (unless `fresh`), or a new one; `OSError` or
        `UpstreamTimeout` when the member cannot be reached."""
        conn = None if fresh else self.take_idle(origin)
        if conn is not None:
            return conn
        loop = asyncio.get_running_loop()
        secure = origin.scheme == "https"
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConnection(loop, origin), origin.host, origin.port,
                                       ssl=self._context() if secure else None,
                                       server_hostname=origin.host if secure else None),
                self.connect_timeout)
        except asyncio.TimeoutError:
            raise UpstreamTimeout(f"no connection to {origin.authority} within {self.connect_timeout:g} s") from None
        return conn

    def release(self, conn: UpstreamConnection) -> None:
        """Keep `conn` for the next request to its origin when it can carry one, else close it."""
        if not conn.reusable:
            conn.close()
            return
        idle = self._idle.setdefault(conn.origin, deque())
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
