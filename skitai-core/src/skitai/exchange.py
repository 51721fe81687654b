"""One request and its response, independent of the protocol that carries them.

A connection protocol (HTTP/1.1 in the core, HTTP/2 and HTTP/3 in plugins) parses a request into
an `Exchange` subclass and implements its response methods; request handlers (WSGI apps, static
files, plugin handlers) only ever talk to this interface. All response methods run on the event
loop thread; code on other threads goes through the exchange's `call_soon_threadsafe` (the
loop's `skitai.loopcalls`, many calls per wake-up of the loop) and waits on `writable` for
back-pressure.
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Sequence, Union

from .body import EMPTY_BODY, ClientDisconnected
from .loopcalls import loop_calls
from .transactions import Transaction


@dataclass(slots=True)
class FileSegment:
    """`count` bytes of an open file from `offset`, sent with sendfile where the transport allows."""

    file: BinaryIO
    offset: int
    count: int


BodyPiece = Union[bytes, FileSegment]

# The `writable` of every HTTP/1.1 connection and every HTTP/2 or HTTP/3 stream until it first
# has to wait, never cleared: most never wait on flow control, and an Event each (a Condition
# and its lock) cost more than the rest of their bookkeeping. Whatever must wait is given an
# Event of its own first.
ALWAYS_WRITABLE = threading.Event()
ALWAYS_WRITABLE.set()


class PreparedResponse:
    """A complete response sent many times unchanged (a cached static file, or its 304).

    `headers` carry the Content-Length. A protocol may keep its own encoding of the response
    in `encoded` (under keys of its own that say what the encoding depends on, the Date
    included), so a repeat costs no header building: HTTP/1.1 does. The creator makes a new
    object instead of changing one.
    """

    __slots__ = ("status", "headers", "body", "encoded")

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.encoded: dict = {}


def body_length(pieces: Sequence[BodyPiece]) -> int:
    return sum(piece.count if isinstance(piece, FileSegment) else len(piece) for piece in pieces)


def split_host(host: str) -> tuple[str, str]:
    """A Host header's name and port: 'example.com:8080' -> ('example.com', '8080'),
    '[::1]' -> ('[::1]', ''); the port is '' when there is none."""
    if host.rfind(":") > host.rfind("]"):
        name, _, port = host.rpartition(":")
        return name, port
    return host, ""


class Exchange:
    """Request attributes plus the response interface a protocol implements."""

    protocol_name = "HTTP/1.1"
    # The `:protocol` of an HTTP/2 extended CONNECT (RFC 8441: "websocket"), else None.
    connect_protocol: str | None = None
    # The Upgrade field of an HTTP/1.1 request (its values joined), else None: kept apart so
    # that routing an ordinary request never scans its headers for it.
    upgrade: str | None = None
    # Trailer fields (lower-case names, validated) sent after the body by a protocol that can:
    # set on the loop thread with `set_trailers` before `finish` or `send_response`.
    trailers: list[tuple[str, str]] | None = None
    # A `drain` waiting on the loop thread (one handler per exchange, so at most one).
    _drain_waiter: asyncio.Future | None = None
    # Per-request state set on the usual paths of a request (`__init__` sets its starting
    # values, see there)
    body: Any
    script_name: str
    path_info: str
    handler: Any
    status: int
    bytes_sent: int
    responded_at: float
    finished: bool
    _transaction: Transaction | None
    # State of the rarer paths: class-level starting values (immutable), stored only when a
    # request takes such a path.
    aborted = False
    _done_callbacks: "list[Callable[[Exchange], None]] | tuple" = ()
    _server: tuple | None = None
    # A dict the protocol shares among the exchanges of one connection, where handlers keep
    # what every request on it has in common (the WSGI environ's client and scheme keys); None
    # where the protocol keeps none, or for a connection's last request (nothing to share).
    environ_bases: dict | None = None

    def __init__(self, loop: Any, method: str, target: str, path: str, query: str, version: str,
                 headers: list[tuple[str, str]], scheme: str, client: tuple, server: tuple | None,
                 writable: threading.Event) -> None:
        self.loop = loop
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.scheme = scheme
        self.client = client
        if server is not None:  # else looked up when asked (see `server`)
            self._server = server
        self.started_at = time.monotonic()
        # Set while the peer accepts data; producers on other threads wait on it. Protocols
        # share one event per connection or stream.
        self.writable = writable
        # Every attribute a request sets on its usual paths is set here, although a class-level
        # default would spare the store: CPython keeps an object's attributes in a compact
        # layout shared by its class only for the names the class's first instances set (30
        # at most, fewer the more instances exist), and gives every other object that sets a
        # name outside it a dict of its own, some thousands of instructions per request. Names
        # first set late, when a response goes out while other requests are already open (a
        # busy start), did not make it, and every request of the process paid.
        self.body = EMPTY_BODY
        self.script_name = self.path_info = ""
        self.handler = None
        self.status = self.bytes_sent = 0
        self.responded_at = 0.0
        self.finished = False
        self._transaction = None

    # request helpers
    @property
    def server(self) -> tuple:
        """(address, port) of the local socket the request came in on. A protocol may pass
        None for it and override `_local_address`, asked the first time this is read: most
        requests never read it (their Host gives SERVER_NAME and SERVER_PORT), while looking it
        up on every accepted connection was a measurable part of a `Connection: close`
        request."""
        server = self._server
        if server is None:
            server = self._server = self._local_address()
        return server

    def _local_address(self) -> tuple:
        return ("", 0)

    @property
    def transaction(self) -> Transaction:
        """The request's API transaction ids (see `skitai.transactions`), made from its headers
        on first use (loop thread: the WSGI environ and the request log use it)."""
        if self._transaction is None:
            self._transaction = Transaction.for_request(self.headers)
        return self._transaction

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header (name in lower case), or `default`."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    # completion
    def add_done_callback(self, callback: Callable[["Exchange"], None]) -> None:
        """Run `callback(exchange)` on the loop thread once the exchange finished or was aborted."""
        if self.finished or self.aborted:
            callback(self)
        else:
            if not self._done_callbacks:
                self._done_callbacks = []
            self._done_callbacks.append(callback)

    def run_done_callbacks(self) -> None:
        """Run the callbacks of `add_done_callback`, once: a protocol calls this on the loop
        thread when the exchange has finished (its response went out) or was aborted."""
        callbacks = self._done_callbacks
        if not callbacks:
            return
        self._done_callbacks = ()
        for callback in callbacks:
            callback(self)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback(*args)` on the loop thread soon, after the calls this thread made
        before; any thread. Batched with other threads' calls (`skitai.loopcalls`): it runs in
        a context of its own, not the caller's `contextvars` context."""
        loop_calls(self.loop).call(callback, *args)

    # output back-pressure for handlers on the loop thread
    async def drain(self) -> None:
        """Wait until the client has taken enough of what was sent (`send_data`) for more to be
        sent: at once while `writable` is set (or the response is complete), else until the
        protocol sets it again (HTTP/1.1: the transport's `resume_writing`; HTTP/2: the
        stream's unsent data, held back by its flow-control window or the connection's full
        write buffer, fell under the low-water mark). Raises `ClientDisconnected` when the
        connection was lost or the stream reset, also while waiting; a client that takes
        nothing within the request timeout is dropped, which ends the wait the same way. Loop
        thread only; a handler that streams with `send_data` awaits it after each piece to keep
        the server's memory bounded."""
        while not (self.aborted or self.finished or self.writable.is_set()):
            self._drain_waiter = self.loop.create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None
        if self.aborted:
            raise ClientDisconnected("the client is gone")

    def wake_drain(self) -> None:
        """For protocols, on the loop thread: `writable` was set again or the exchange was
        aborted, so a pending `drain` looks again."""
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # response interface, implemented by protocols (loop thread only)
    def send_response(self, status: str, headers: list[tuple[str, str]],
                      body: bytes | Sequence[BodyPiece] = b"") -> None:
        """Send a complete response. `body` is bytes or a list of bytes and `FileSegment`s;
        Content-Length is added from it unless `headers` carries one."""
        raise NotImplementedError

    def send_prepared(self, response: PreparedResponse) -> None:
        """Send a `PreparedResponse`; protocols that can reuse an encoding of it override this."""
        self.send_response(response.status, response.headers, response.body)

    def send_head(self, status: str, headers: list[tuple[str, str]]) -> None:
        """Start a streamed response; the body follows through `send_data` and `finish`."""
        raise NotImplementedError

    def send_data(self, data: bytes) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def abort(self, cancelled: bool = False) -> None:
        """Give up on the response: the client must not take a truncated body for a complete
        one, so the protocol resets the stream or connection. `cancelled` says the client, not
        the server, ended it (it stopped reading or went away): protocols whose resets carry a
        reason say so (HTTP/2 CANCEL, HTTP/3 H3_REQUEST_CANCELLED) instead of an internal error."""
        raise NotImplementedError

    def request_continue(self) -> None:
        """The app is about to read the body: answer `Expect: 100-continue` if the protocol must."""

    def set_trailers(self, trailers: list[tuple[str, str]]) -> None:
        """Fields to send after the body (loop thread, before the response ends). Protocols that
        cannot carry them here (HTTP/1.1 without chunked framing or `TE: trailers`) drop them."""
        self.trailers = trailers

    def open_tunnel(self, status: str, headers: list[tuple[str, str]], protocol: Any) -> None:
        """Answer with `status` and `headers`, then carry raw bytes both ways: a WebSocket
        (HTTP/1.1 `101 Switching Protocols` for the rest of the connection; HTTP/2 `200` for the
        rest of the stream of an extended CONNECT, RFC 8441) or a proxy's TCP tunnel (a `200`
        to a `CONNECT host:port`: HTTP/1.1 authority-form, or HTTP/1.0 as Python's
        `http.client` sends it, whose `target` and `path` are the authority; HTTP/2 CONNECT with
        `:authority` alone, RFC 9113 8.5, likewise). A `2xx` to a CONNECT carries no
        Content-Length or Transfer-Encoding (RFC 9110 9.3.6): pass only the fields the client
        should see. HTTP/1.1 requires the request to be complete with
        nothing pipelined behind it (bytes the client sent right after a bodiless CONNECT or
        Upgrade request are kept and handed to `protocol` first); HTTP/2 requires a CONNECT.

        `protocol` is an `asyncio.Protocol`: its `connection_made(transport)` gets a transport
        (the connection's own, or one that carries the stream's DATA frames) with `write`,
        `close`, `abort`, `pause_reading`, `resume_reading`, `is_closing` and `get_extra_info`,
        and it receives `data_received`, `eof_received`, `pause_writing`/`resume_writing` and
        `connection_lost`. The exchange is finished (and logged) once the answer is sent.
        Loop thread only.
        """
        raise NotImplementedError(f"{self.protocol_name} exchanges cannot switch protocols")

    def push(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> bool:
        """Offer the client the response to `GET path` before it asks (HTTP/2 server push).

        Callable from the app's thread while the response is not complete; the promise goes out
        ahead of the response calls that follow it. Returns whether a push was promised: False
        where the protocol has no push (HTTP/1.1), the client refused it, or a limit was hit.
        """
        return False

    @property
    def response_started(self) -> bool:
        return self.status != 0


class RequestHandler:
    """Serves requests. The core's mount table, WSGI apps and static directories are handlers.

    `resolve(exchange)` returns the handler that will serve the exchange (this one, another one
    it delegates to, or None to let later handlers try); it may set `exchange.script_name` and
    `exchange.path_info`. `handle(exchange)` is then called on the loop thread and must end in
    a response (`send_response`, or `send_head`/`send_data`/`finish`) or `abort`.
    With `needs_full_body`, `handle` runs only once the whole request body is received (spooled),
    so it can read the body without blocking.
    """

    needs_full_body = False

    def bind(self, server: Any) -> None:
        """Called once on the loop thread before serving; take what the handler needs from the
        running server (its thread pool, its settings)."""

    def resolve(self, exchange: Exchange) -> "RequestHandler | None":
        return self

    def handle(self, exchange: Exchange) -> None:
        raise NotImplementedError
