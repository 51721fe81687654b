"""The HTTP/1.1 connection: joins the sans-IO parser and framing to an asyncio transport.

Responsibilities that need the socket live here and nowhere else: keep-alive and pipelining
(responses strictly in request order), flow control in both directions, timeouts (408 for an
incomplete request, silent close for an idle keep-alive connection), `Expect: 100-continue`,
answering parse errors with their status before closing, and sendfile for file bodies.
It is also where other protocols take a plain connection over: by its first bytes (a registered
preface such as HTTP/2's), by an `Upgrade` request a registered `ProtocolUpgrade` accepts, or by
a handler that answers a request with `open_tunnel` (a WebSocket handshake). The bytes after a
bodiless `Upgrade` request are held, unparsed, until its answer tells whether they are HTTP/1.1.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections import deque
from typing import Sequence

from ..body import BodyTimeout, ClientDisconnected, DiscardedBody, SpooledBody, StreamedBody
from ..closing import linger_then_close
from ..exchange import (
    ALWAYS_WRITABLE,
    BodyPiece,
    Exchange,
    FileSegment,
    PreparedResponse,
    RequestHandler,
    body_length,
)
from ..httpdate import http_date_now
from ..loopcalls import loop_calls
from ..plugins import describe_origin
from ..statuses import error_body, error_headers, status_line
from .framing import (
    CHUNKED,
    CONTINUE_RESPONSE,
    LENGTH,
    NO_BODY,
    Framing,
    accepts_trailers,
    chunk,
    frame_response,
    frame_switch,
    last_chunk,
    status_code,
)
from .parser import END_OF_REQUEST, ParseError, RequestHead, RequestParser, RequestTrailers, UpgradeRest

log = logging.getLogger("skitai.http1")

MAX_PIPELINED = 16          # queued requests before the connection stops reading
DRAIN_LIMIT = 1024 * 1024   # unread body bytes discarded to keep a connection alive
MSG_MORE = getattr(socket, "MSG_MORE", 0)
SHUTDOWN_IDLE_GRACE = 1.0   # seconds an idle connection may still bring a request during a stop
FILE_CHUNK = 256 * 1024     # read size when a file body cannot be sent with sendfile


class BadRequestBody(ClientDisconnected):
    """The request body turned out malformed or too large while the app was reading it."""


class H1Exchange(Exchange):
    # This protocol's own per-request state lives in slots, which take no room in the layout
    # CPython shares among the instances' other attributes (see `Exchange.__init__`).
    __slots__ = ("conn", "environ_bases", "keep_alive", "content_length", "expect_continue", "upgrade",
                 "continue_sent", "dispatched", "_mode", "_remaining", "_head", "body_error")

    def __init__(self, conn: "H1Connection", head: RequestHead) -> None:
        Exchange.__init__(self, conn.loop, head.method, head.target, head.path, head.query, head.version,
                          head.headers, conn.scheme, conn.client, None, conn.writable)
        self.conn = conn
        # the connection's last request has nothing to share with a next one
        self.environ_bases = conn.environ_bases if head.keep_alive else None
        if head.version != "1.1":
            self.protocol_name = "HTTP/1.0"  # the class default is HTTP/1.1's
        self.keep_alive = head.keep_alive
        self.content_length = head.content_length
        self.expect_continue = head.expect_continue
        self.upgrade = head.upgrade
        self.continue_sent = self.dispatched = False
        self._mode = NO_BODY
        self._remaining: int | None = None
        self._head: bytes | None = None   # held back to go out with the first body bytes
        # The parse error that broke off this request's body while it waited behind an earlier
        # request (pipelined): answered when its turn comes, since its body will never end.
        self.body_error: ParseError | None = None

    def _local_address(self) -> tuple:
        return self.conn.sockname

    def _keeps_alive(self) -> bool:
        keep_alive = self.keep_alive and not self.conn.shutting_down
        if keep_alive and not self.body.complete and not self.conn.can_drain(self):
            keep_alive = False  # the unread rest of the body will cost us the connection: say so
        return keep_alive

    def _framing(self, status: str, headers: list[tuple[str, str]], length: int | None):
        keep_alive = self.keep_alive and not self.conn.shutting_down
        if keep_alive and not self.body.complete:
            keep_alive = self._keeps_alive()
        framing = frame_response(status, headers, self.version, self.method, keep_alive, length,
                                 self.conn.settings.extra_fields)
        return self._use(framing)

    def _use(self, framing: Framing) -> Framing:
        self.keep_alive = framing.keep_alive
        self.status = framing.code
        self.responded_at = time.monotonic()
        self._mode = framing.mode
        self._remaining = framing.length
        return framing

    def send_prepared(self, response: PreparedResponse) -> None:
        """The response's head encoded once per second (the Date changes) for each request
        shape it serves; the head and the body leave in one writev, with no copy of the body."""
        if self.finished or self.aborted:
            return
        keep_alive = self._keeps_alive()
        key = ("HTTP/1", self.method, self.version, keep_alive)
        date = http_date_now()
        memo = response.encoded.get(key)
        if memo is None or memo[0] != date:
            body = response.body
            memo = response.encoded[key] = (date, frame_response(
                response.status, response.headers, self.version, self.method, keep_alive, len(body),
                self.conn.settings.extra_fields))
        framing = self._use(memo[1])
        if framing.mode == NO_BODY:
            self.conn.write(framing.head)
        else:
            body = response.body
            self.conn.write_pair(framing.head, body)
            self.bytes_sent += len(body)
        self._complete()

    def send_response(self, status: str, headers: list[tuple[str, str]],
                      body: bytes | Sequence[BodyPiece] = b"") -> None:
        if self.finished or self.aborted:
            return
        if isinstance(body, (bytes, bytearray, memoryview)):
            framing = self._framing(status, headers, len(body))
            conn = self.conn
            if framing.mode == NO_BODY:
                conn.write(framing.head)
            else:
                if len(body) != framing.length:
                    # The app's Content-Length disagrees with its body: send what it declared at
                    # most, and close so a short body cannot be mistaken for a complete one.
                    body = body[:framing.length]
                    self.keep_alive = False
                if not conn.closed:
                    conn.transport.write(framing.head + body)
                self.bytes_sent += len(body)
            conn.exchange_finished(self)
            return
        pieces = list(body)
        framing = self._framing(status, headers, body_length(pieces))
        if framing.mode == NO_BODY:
            self.conn.write(framing.head)
            self._complete()
        else:
            self.conn.send_pieces(self, framing.head, pieces)

    def send_head(self, status: str, headers: list[tuple[str, str]]) -> None:
        if self.finished or self.aborted:
            return
        self._head = self._framing(status, headers, None).head

    def send_data(self, data: bytes) -> None:
        if self.finished or self.aborted or not data:
            return
        mode = self._mode
        if mode == NO_BODY:
            return
        if mode == LENGTH:
            if len(data) > self._remaining:
                data = data[:self._remaining]
            self._remaining -= len(data)
            out = data
        elif mode == CHUNKED:
            out = chunk(data)
        else:
            out = data
        self.bytes_sent += len(data)
        if self._head is not None:
            out = self._head + out
            self._head = None
        self.conn.write(out)

    def finish(self) -> None:
        if self.finished or self.aborted:
            return
        out = b""
        if self._head is not None:
            out, self._head = self._head, None
        if self._mode == CHUNKED:
            trailers = self.trailers
            out += last_chunk(trailers if trailers and accepts_trailers(self.header("te")) else None)
        elif self._mode == LENGTH and self._remaining:
            # The app sent less than its Content-Length: only closing tells the client.
            self.keep_alive = False
        if out:
            self.conn.write(out)
        self._complete()

    def abort(self, cancelled: bool = False) -> None:
        if self.finished or self.aborted:
            return
        self.keep_alive = False
        self.conn.abort()

    def request_continue(self) -> None:
        if self.expect_continue and not self.continue_sent:
            self.call_soon_threadsafe(self.conn.send_continue, self)  # in order with the response

    def open_tunnel(self, status: str, headers: list[tuple[str, str]], protocol) -> None:
        if self.finished or self.aborted:
            return
        # An HTTP/1.0 CONNECT may tunnel (Python's http.client, and so requests, send one);
        # switching protocols with 101 is HTTP/1.1's alone.
        version_ok = self.version == "1.1" or (self.version == "1.0" and self.method == "CONNECT")
        if not version_ok or self.conn.pending or not self.body.complete:
            raise RuntimeError("only a complete HTTP/1.1 request (or HTTP/1.0 CONNECT) with nothing "
                               "pipelined behind it can switch protocols")
        self.status = status_code(status)
        self.responded_at = time.monotonic()
        self.conn.open_tunnel(self, frame_switch(status, headers), protocol)

    def _complete(self) -> None:
        self.conn.exchange_finished(self)


class _Upgrading(RequestHandler):
    """Stands in for the handler of a request a `ProtocolUpgrade` accepted: the usual dispatch
    order reads the whole body and sends earlier pipelined responses first, then the connection
    is handed over to the protocol the upgrade returns."""

    needs_full_body = True

    def __init__(self, upgrade) -> None:
        self.upgrade = upgrade

    def handle(self, exchange: H1Exchange) -> None:
        conn = exchange.conn
        conn.hand_over(self.upgrade.take_over(conn.server, exchange))


class H1Settings:
    """What every HTTP/1.1 connection of a server reads from its settings and registries,
    gathered once per server (`of`) rather than by each accepted connection, which under
    `Connection: close` is once per request. The settings and the registries are final once a
    server exists (`Kernel.configure` runs before it is built)."""

    __slots__ = ("request_timeout", "keep_alive_timeout", "max_request_line", "max_header_size",
                 "max_header_count", "max_upload_size", "extra_fields", "upgrades", "preface_starts")

    def __init__(self, server) -> None:
        config = server.config
        self.request_timeout = config.request_timeout
        self.keep_alive_timeout = config.keep_alive
        self.max_request_line = config.max_request_line
        self.max_header_size = config.max_header_size
        self.max_header_count = config.max_header_count
        self.max_upload_size = config.max_upload_size
        protocols = server.kernel.protocols
        self.extra_fields = server.kernel.response_fields.for_protocol("HTTP/1.1")
        self.upgrades = protocols.upgrades
        self.preface_starts = protocols.preface_starts

    @classmethod
    def of(cls, server) -> "H1Settings":
        settings = server.protocol_settings.get(cls)
        if settings is None:
            settings = server.protocol_settings[cls] = cls(server)
        return settings


class H1Connection(asyncio.Protocol):
    # Every attribute is a slot that `__init__` sets (`client`, `timer_kind` and `deadline`:
    # `connection_made`, `_saved_timer`: `pause_writing`): CPython 3.11 reads a class-level starting
    # value through an instance on its slow, unspecialized path each time (until the instance
    # sets its own), so the class-level values this connection used to start with cost more,
    # under `Connection: close`, than storing them all; and a connection allocates no dict.
    __slots__ = ("server", "loop", "settings", "parser", "pending", "environ_bases", "_sniff",
                 "transport", "client", "scheme", "writable", "current", "receiving", "error",
                 "closed", "draining", "shutting_down", "reading_paused", "timer_kind", "deadline",
                 "_saved_timer", "_direct", "_send_task", "_drain_waiter", "handed_over", "latest",
                 "_held", "_holding_for", "_sockname", "__weakref__")

    def __init__(self, server) -> None:
        self.server = server
        self.loop = server.loop
        settings = server.protocol_settings.get(H1Settings)  # H1Settings.of, without the call
        if settings is None:
            settings = H1Settings.of(server)
        self.settings = settings
        self.parser = RequestParser(settings.max_request_line, settings.max_header_size,
                                    settings.max_header_count, settings.max_upload_size)
        # requests pipelined behind the current one: an empty tuple until the first (most
        # connections never have one), since a deque allocates a block of 64 slots when made
        self.pending: deque[H1Exchange] | tuple = ()
        self.environ_bases: dict = {}  # the exchanges' (see Exchange.environ_bases)
        # first bytes kept until they tell HTTP/1.1 from a registered preface (None: decided)
        self._sniff: bytes | None = b"" if settings.preface_starts else None
        self.transport: asyncio.Transport | None = None
        self.scheme = "http"  # "https" over TLS (see connection_made)
        # Set while the client takes what is written; producers on other threads wait on it. All
        # connections share one that is never cleared until their first `pause_writing`, which
        # gives the connection an Event of its own (`_own_writable`): most never need one.
        self.writable: threading.Event = ALWAYS_WRITABLE
        self.current: H1Exchange | None = None
        self.receiving: H1Exchange | None = None
        self.error: ParseError | None = None
        self.closed = self.shutting_down = self.reading_paused = self.handed_over = False
        self.draining: H1Exchange | None = None
        self._direct: socket.socket | None = None
        self._send_task: asyncio.Task | None = None
        self._drain_waiter: asyncio.Future | None = None
        self.latest: H1Exchange | None = None  # the last request whose head arrived
        # bytes after a bodiless Upgrade request, held until its answer (see UpgradeRest)
        self._held: bytes | None = None
        self._holding_for: H1Exchange | None = None
        self._sockname: tuple | None = None  # see `sockname`

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.client = transport.get_extra_info("peername") or ("", 0)
        # Only `skitai.enable_ssl` makes a listener speak TLS: without a certificate the
        # connection is plain, and the transport, whose answer costs as much as the peer's
        # address, is not asked.
        if self.server.config.ssl_certfile and transport.get_extra_info("sslcontext"):
            self.scheme = "https"
        self.timer_kind = "request"  # _set_timer, without the call
        self.deadline = time.monotonic() + self.settings.request_timeout
        self.server.connection_opened(self)

    @property
    def sockname(self) -> tuple:
        """(address, port) of the local socket, looked up when first asked for (a request
        without Host, see `Exchange.server`), not on every accepted connection. Asked on the
        loop thread while a request is dispatched, when even a TLS transport still has it."""
        sockname = self._sockname
        if sockname is None:
            sockname = self._sockname = self.transport.get_extra_info("sockname") or ("", 0)
        return sockname

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return  # lingering close: input is discarded
        if self._held is not None:
            self._held += data  # read before pause_reading took effect
            return
        if self._sniff is not None:
            if self._sniff:
                data = self._sniff + data
            self._sniff = None
            # most connections are told from their first byte, which no preface begins with
            if data[0] in self.settings.preface_starts and self._took_by_preface(data):
                return
        kind = self.timer_kind
        if kind == "idle":  # the next request begins: _set_timer, without the call
            self.timer_kind = "request"
            self.deadline = time.monotonic() + self.settings.request_timeout
        elif kind == "body":
            self.deadline = time.monotonic() + self.settings.request_timeout
        self._feed(data)

    def _took_by_preface(self, data: bytes) -> bool:
        """Whether a registered preface takes `data`, the connection's first bytes: the
        connection is handed to that protocol, or the bytes are kept until more tell."""
        spec, undecided = self.server.kernel.protocols.match_preface(data)
        if undecided:
            self._sniff = data
        elif spec is not None:
            self.hand_over(spec.factory(self.server), data)
        return undecided or spec is not None

    def _feed(self, data: bytes) -> None:
        events = self.parser.feed(data)
        trailers = None  # a RequestTrailers event is always followed by its END_OF_REQUEST
        for index, event in enumerate(events):
            kind = type(event)
            if kind is bytes:
                self.receiving.body.feed(event)
            elif kind is RequestHead:
                self._on_head(event)
                if self.handed_over:
                    self._hand_over_rest(events[index + 1:])
                    return  # what follows the upgrade request is not HTTP/1.1
            elif event is END_OF_REQUEST:
                if self.receiving is not None:  # else a request without a body: nothing to end
                    self._on_end(trailers)
                trailers = None
                if self.handed_over:
                    self._hand_over_rest(events[index + 1:])
                    return
            elif kind is RequestTrailers:
                trailers = event.fields
            elif kind is UpgradeRest:
                self._on_upgrade_rest(event.data)
            else:
                self._on_error(event)

    def _hand_over_rest(self, events: list) -> None:
        """A handler switched protocols (`open_tunnel`) while the read that brought its request
        was being parsed: the bytes the parser left unparsed after it (`UpgradeRest`: a CONNECT
        client's first tunnel bytes) belong to the new protocol."""
        for event in events:
            if type(event) is UpgradeRest and event.data:
                self.transport.get_protocol().data_received(event.data)

    def eof_received(self):
        """The client closed its side: it is taken as gone, and the connection closes now.

        A FIN cannot be told from a half-close, and a client that half-closes before reading
        its answer is all but unheard of, while one that gave up is common (uvicorn closes too,
        Go cancels the request's context, nginx aborts a proxied request with 499). Closing
        makes `connection_lost` abort what is in flight: queued apps are not run, a running
        app's body read raises `ClientDisconnected` at once instead of waiting out the request
        timeout.
        """
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.timer_kind = None
        if self.writable is not ALWAYS_WRITABLE:
            self.writable.set()  # wake producers so they see `aborted`
        if self._send_task is not None:
            self._send_task.cancel()
        if self._direct is not None:  # the second descriptor of sendfile (see _send_file)
            self._direct.close()
            self._direct = None
        if self.current is None and self.receiving is None and not self.pending:
            # nothing in flight, the usual end (a closed `Connection: close` exchange)
            self._let_go()
            self.server.connection_closed(self)
            return
        exchanges = ([self.current] if self.current is not None else []) + list(self.pending)
        if self.receiving is not None and self.receiving not in exchanges:
            exchanges.append(self.receiving)
        self.current = self.receiving = None
        self.pending = ()
        self._let_go()
        for exchange in exchanges:
            if not exchange.finished:
                exchange.aborted = True
                exchange.body.fail(ClientDisconnected("client closed the connection"))
                exchange.wake_drain()
                if exchange.response_started or exchange.dispatched:
                    self.server.log_exchange(exchange)  # an app had it: logged as aborted
                exchange.run_done_callbacks()
        self.server.connection_closed(self)

    def _let_go(self) -> None:
        """The connection is done with HTTP/1.1 (lost, or handed to another protocol): drop
        the parser's callbacks and the exchanges it still names. Each exchange names the
        connection, so these references were cycles that left every connection to the cyclic
        garbage collector; without them it is freed as soon as the transport lets it go."""
        self.parser.close()
        self.latest = self.draining = self._holding_for = None
        self._held = None

    def pause_writing(self) -> None:
        if self.writable is ALWAYS_WRITABLE:
            self._own_writable()
        self.writable.clear()
        self._saved_timer = (self.timer_kind, self.deadline)
        self._set_timer("write", self.settings.request_timeout)

    def resume_writing(self) -> None:
        self.writable.set()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        if self.current is not None:
            self.current.wake_drain()
        if self.timer_kind == "write":
            self.timer_kind, self.deadline = self._saved_timer

    def _own_writable(self) -> None:
        """Replace the shared, never-cleared `writable` with an Event of this connection's, for
        it and for the exchanges that were handed the shared one (a producer reads
        `exchange.writable` each time it looks)."""
        writable = self.writable = threading.Event()
        writable.set()
        for exchange in (self.current, self.receiving, *self.pending):
            if exchange is not None:
                exchange.writable = writable

    # request events
    def _on_head(self, head: RequestHead) -> None:
        exchange = self.latest = H1Exchange(self, head)
        upgrade = self._upgrade_for(exchange) if self.settings.upgrades and exchange.upgrade is not None else None
        if upgrade is not None:
            handler = exchange.handler = _Upgrading(upgrade)
        else:
            handler = exchange.handler = self.server.resolve(exchange)
        if head.chunked or head.content_length:  # head.has_body, without the property's call
            if handler.needs_full_body:
                exchange.body = SpooledBody()
            else:
                exchange.body = StreamedBody(
                    self._pause_reading, self._resume_reading_threadsafe, self.settings.request_timeout,
                    exchange.request_continue if head.expect_continue else None)
            self.receiving = exchange
            self._set_timer("body", self.settings.request_timeout)
        else:
            self.timer_kind = None
        if self.current is None:
            self._start(exchange)
        else:
            if not self.pending:
                self.pending = deque()
            self.pending.append(exchange)
            if len(self.pending) == MAX_PIPELINED:
                self._pause_reading()

    def _upgrade_for(self, exchange: H1Exchange):
        """The registered upgrade that accepts this request (`Connection: Upgrade` and an
        `Upgrade` token it knows, tried in the client's order), or None to serve HTTP/1.1."""
        offered = exchange.upgrade
        if offered is None or self.shutting_down or exchange.version != "1.1":
            return None
        connection = exchange.header("connection") or ""
        if "upgrade" not in (token.strip().lower() for token in connection.split(",")):
            return None
        for token in offered.split(","):
            upgrade = self.settings.upgrades.get(token.strip().lower())
            if upgrade is not None and upgrade.accepts(exchange):
                return upgrade
        return None

    def _on_upgrade_rest(self, data: bytes) -> None:
        """The request that asked for Upgrade may yet switch protocols: hold what follows it
        until it is answered; if it already was (in HTTP/1.1), go on parsing."""
        exchange = self.latest
        if exchange is not None and not (exchange.finished or exchange.aborted):
            self._held = data
            self._holding_for = exchange
            self._pause_reading()
        elif data and not self.closed:
            self._feed(data)

    def _release_held(self) -> None:
        """The upgrade request was answered in HTTP/1.1: what followed it is HTTP/1.1 too."""
        data, self._held, self._holding_for = self._held, None, None
        if self.closed:
            return
        self._resume_reading()
        if data:
            self.data_received(data)

    def open_tunnel(self, exchange: H1Exchange, head: bytes, protocol: asyncio.BaseProtocol) -> None:
        """`exchange` switched protocols: its answer goes out and the connection, with anything
        the client sent after the request, belongs to `protocol` from here on."""
        self.write(head)
        data, self._held, self._holding_for = self._held or b"", None, None
        exchange.finished = True
        self.server.log_exchange(exchange)
        exchange.run_done_callbacks()
        self.hand_over(protocol, data)

    def hand_over(self, protocol: asyncio.BaseProtocol, data: bytes = b"") -> None:
        """Give the transport to `protocol` (chosen by a preface or an upgrade) without closing
        it; `data` are bytes already read that belong to the new protocol. This connection is
        finished from here on and leaves the server's set; the new one joins it itself."""
        self.closed = self.handed_over = True
        self.timer_kind = None
        self.current = self.receiving = None
        self._let_go()
        self.server.connection_closed(self)
        transport = self.transport
        transport.set_protocol(protocol)
        if self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()
        protocol.connection_made(transport)
        if data:
            protocol.data_received(data)

    def _on_end(self, trailers: list[tuple[str, str]] | None = None) -> None:
        exchange = self.receiving
        if exchange is None:
            return
        self.receiving = None
        if self.timer_kind == "body":
            self.timer_kind = None
        exchange.body.finish(trailers)
        if exchange is self.draining:
            self.draining = None
            self._continue_after(exchange)
        elif exchange is self.current and not exchange.dispatched:
            self._dispatch(exchange)

    def _on_error(self, error: ParseError) -> None:
        self.error = error
        self._pause_reading()
        exchange, self.receiving = self.receiving, None
        if exchange is not None:
            exchange.keep_alive = False
            exchange.body.fail(BadRequestBody(error.reason))
            if exchange is self.current and not exchange.response_started:
                self._answer_error_in_place(exchange, error.status, error.reason)
                return
            if exchange is not self.current:
                exchange.body_error = error
        if self.current is None:
            self._write_error_and_close()

    # dispatch
    def _start(self, exchange: H1Exchange) -> None:
        self.current = exchange
        if exchange.body_error is not None:
            self._answer_error_in_place(exchange, exchange.body_error.status, exchange.body_error.reason)
            return
        if exchange.handler.needs_full_body and not exchange.body.complete:
            if exchange.expect_continue:
                self.send_continue(exchange)
            return  # dispatched by _on_end
        self._dispatch(exchange)

    def _dispatch(self, exchange: H1Exchange) -> None:
        exchange.dispatched = True
        try:
            exchange.handler.handle(exchange)
        except Exception:
            log.exception("request handler of %s failed: %s %s",
                          describe_origin(self.server.kernel.pm, exchange.handler), exchange.method, exchange.target)
            if not exchange.response_started:
                # Nothing went out: the 500 is a whole answer, and the connection stays usable
                # unless an unread body lies between this request and the next.
                if not exchange.body.complete:
                    exchange.keep_alive = False
                exchange.send_response(status_line(500), error_headers(), error_body(500))
            else:
                exchange.abort()

    def send_continue(self, exchange: H1Exchange) -> None:
        if (exchange is self.current and not exchange.continue_sent
                and not exchange.response_started and not self.closed):
            exchange.continue_sent = True
            self.transport.write(CONTINUE_RESPONSE)

    def exchange_finished(self, exchange: H1Exchange) -> None:
        exchange.finished = True
        self.server.log_exchange(exchange)
        if exchange._done_callbacks:
            exchange.run_done_callbacks()
        if exchange is not self.current:
            return
        self.current = None
        if exchange is self._holding_for:
            self._continue_after(exchange)
            self._release_held()
            return
        if not exchange.body.complete and exchange.keep_alive and not self.shutting_down:
            if self.can_drain(exchange):
                # The next request starts after this body: drop the rest of it first.
                exchange.body = DiscardedBody(exchange.body.received, DRAIN_LIMIT, self.close)
                self.draining = exchange
                self._resume_reading()
                return
            exchange.keep_alive = False
        self._continue_after(exchange)

    @staticmethod
    def can_drain(exchange: H1Exchange) -> bool:
        if exchange.expect_continue and not exchange.continue_sent:
            return False  # the client may never send a body it was not asked for
        length = exchange.content_length
        return length is None or length - exchange.body.received <= DRAIN_LIMIT

    def _continue_after(self, exchange: H1Exchange) -> None:
        """What follows a finished response: close, an error answer, the next pipelined request,
        or waiting for one."""
        if not exchange.keep_alive:
            self.close()
        elif self.pending:
            if len(self.pending) == MAX_PIPELINED:
                self._resume_reading()
            self._start(self.pending.popleft())
        elif self.error is not None:
            self._write_error_and_close()
        elif self.shutting_down:
            self.close()
        elif self.parser.in_head:
            self._set_timer("request", self.settings.request_timeout)
        else:  # waiting for the next request, the common case: _set_timer, without the call
            self.timer_kind = "idle"
            self.deadline = time.monotonic() + self.settings.keep_alive_timeout

    # errors
    def _answer_error_in_place(self, exchange: H1Exchange, status: int, reason: str) -> None:
        """Answer a request whose body went wrong before its app responded; a still-running app
        thread finds the exchange finished and its output is dropped."""
        exchange.keep_alive = False
        exchange.send_response(status_line(status), [("Content-Type", "text/plain; charset=utf-8")],
                               error_body(status, reason))

    def _write_error_and_close(self) -> None:
        error = self.error or ParseError(400, "malformed request")
        body = error_body(error.status, error.reason)
        head = (f"HTTP/1.1 {status_line(error.status)}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
        if not self.closed:
            self.transport.write(head + body)
        self.server.log_protocol_error(self, error.status, len(body))
        self.close()

    # timers (checked by the server's once-a-second sweep)
    def _set_timer(self, kind: str, seconds: float) -> None:
        self.timer_kind = kind
        self.deadline = time.monotonic() + seconds

    def check_timeout(self, now: float) -> None:
        kind = self.timer_kind
        if kind is None or now < self.deadline:
            return
        self.timer_kind = None
        if kind == "idle":
            self.close()
        elif kind == "request":
            self.error = ParseError(408, "request not received in time")
            if self.current is None:
                self._write_error_and_close()
            else:
                self.close()
        elif kind == "body":
            exchange, self.receiving = self.receiving, None
            if exchange is None:
                return
            exchange.keep_alive = False
            self._pause_reading()
            exchange.body.fail(BodyTimeout("request body not received in time"))
            if exchange is self.current and not exchange.dispatched:
                self._answer_error_in_place(exchange, 408, "request body not received in time")
            elif exchange is not self.current:
                self.close()
        elif kind == "write":
            self.abort()

    # flow control
    def _pause_reading(self) -> None:
        if not self.reading_paused and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and not self.closed and self.error is None and self._held is None:
            self.reading_paused = False
            self.transport.resume_reading()

    def _resume_reading_threadsafe(self) -> None:
        loop_calls(self.loop).call(self._resume_reading)  # in order with the app's response calls

    # output
    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def write_pair(self, head: bytes, body: bytes) -> None:
        """Head and body in one system call (uvloop's writelines is one writev), no copy."""
        if not self.closed:
            self.transport.writelines((head, body))

    def send_pieces(self, exchange: H1Exchange, head: bytes, pieces: list[BodyPiece]) -> None:
        self._send_task = self.loop.create_task(self._send_pieces(exchange, head, pieces))

    async def _send_pieces(self, exchange: H1Exchange, head: bytes, pieces: list[BodyPiece]) -> None:
        try:
            pending = head
            for piece in pieces:
                if isinstance(piece, FileSegment):
                    await self._send_file(pending, piece)
                    pending = b""
                else:
                    pending += piece
                exchange.bytes_sent += piece.count if isinstance(piece, FileSegment) else len(piece)
            if pending:
                self.write(pending)
        except (OSError, asyncio.TimeoutError) as error:
            log.debug("file response to %s ended: %s", self.client, error)
            exchange.abort()
            return
        except Exception:
            log.exception("sending a file response failed")
            exchange.abort()
            return
        finally:
            self._send_task = None
        exchange._complete()

    async def _send_file(self, prefix: bytes, segment: FileSegment) -> None:
        """sendfile(2) straight to the socket when the transport is a plain TCP socket with an
        empty buffer; otherwise read and write in chunks honouring flow control."""
        sock = self.transport.get_extra_info("socket")
        if (sock is not None and self.transport.get_extra_info("sslcontext") is None
                and hasattr(os, "sendfile") and self.transport.get_write_buffer_size() == 0):
            if self._direct is None:
                # A second descriptor for the same socket: the loop refuses add_writer on the
                # transport's own descriptor, and the transport never sees our direct writes
                # because its buffer is empty and nothing else writes meanwhile.
                self._direct = socket.socket(fileno=os.dup(sock.fileno()))
            await self._sendfile_direct(self._direct, prefix, segment)
            return
        if prefix:
            self.write(prefix)
        offset, remaining = segment.offset, segment.count
        while remaining:
            await self._wait_writable()
            data = os.pread(segment.file.fileno(), min(FILE_CHUNK, remaining), offset)
            if not data:
                raise OSError("file shrank while being sent")
            self.write(data)
            offset += len(data)
            remaining -= len(data)

    async def _sendfile_direct(self, direct: socket.socket, prefix: bytes, segment: FileSegment) -> None:
        fd = direct.fileno()
        view = memoryview(prefix)
        while view:
            try:
                # MSG_MORE: the head joins the file's first segment instead of leaving alone.
                view = view[direct.send(view, MSG_MORE):]
            except BlockingIOError:
                await self._socket_writable(fd)
        offset, remaining = segment.offset, segment.count
        file_fd = segment.file.fileno()
        while remaining:
            try:
                sent = os.sendfile(fd, file_fd, offset, remaining)
            except BlockingIOError:
                await self._socket_writable(fd)
                continue
            if sent == 0:
                raise OSError("file shrank while being sent")
            offset += sent
            remaining -= sent

    async def _socket_writable(self, fd: int) -> None:
        waiter = self.loop.create_future()
        self.loop.add_writer(fd, waiter.set_result, None)
        try:
            await asyncio.wait_for(waiter, self.settings.request_timeout)
        finally:
            self.loop.remove_writer(fd)

    async def _wait_writable(self) -> None:
        if self.writable.is_set():
            return
        self._drain_waiter = self.loop.create_future()
        try:
            await asyncio.wait_for(self._drain_waiter, self.settings.request_timeout)
        finally:
            self._drain_waiter = None

    # closing
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.timer_kind = None
        if self.receiving is not None or self.error is not None:
            # Input is still arriving: linger (data_received ignores it once closed), reading
            # again so that it is discarded rather than left unread.
            if self.reading_paused:
                self.reading_paused = False
                self.transport.resume_reading()
            linger_then_close(self.transport, self.loop)
        else:
            self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def shutdown(self) -> None:
        """Graceful stop: close after the response in flight. An idle keep-alive connection gets
        a short grace instead of an immediate close: a client that sends its next request just
        then is answered (with `Connection: close`) rather than finding the connection dropped
        under it, which is how keep-alive clients lose requests during reloads."""
        self.shutting_down = True
        if self.current is None and not self.pending and self.receiving is None:
            self._set_timer("idle", min(self.settings.keep_alive_timeout, SHUTDOWN_IDLE_GRACE))
