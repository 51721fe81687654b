"""The HTTP/2 connection: joins the sans-IO `H2Session` to an asyncio transport and to the
server's handlers, one `H2Exchange` per stream.

What needs the socket or the clock lives here: reading and writing, per-stream request-body
back-pressure (window credit is held back while the app is not reading), writes coalesced once
per loop iteration, timeouts driven by the server's once-a-second sweep (idle connection, stalled
streams, a peer that stops reading the socket), and GOAWAY on graceful stop. Server push also
ends here: a promised request becomes an `H2Exchange` served like a received one. So do
tunnels: an extended CONNECT's DATA frames go to the protocol its handler switched to.
"""
from __future__ import annotations

import asyncio
import logging
import time

import h2.events
from h2.errors import ErrorCodes

from skitai.plugin import (
    ClientDisconnected,
    SpooledBody,
    error_body,
    error_headers,
    linger_then_close,
    status_line,
)
from skitai.streamexchange import block_stream, dispatch, refuse_body, take_body
from skitai.streamfields import BadRequest, check_trailers, request_fields

from .exchange import LOW_WATER, H2Exchange
from .session import H2Session, Limits, SessionError
from .tunnel import StreamTunnel

log = logging.getLogger("skitai.http2")

# The most body data one flush turns into frames: a large response goes out slice by slice,
# each written before the next is made, instead of being framed whole into one huge buffer.
WRITE_SLICE = 256 * 1024
SWITCHING_PROTOCOLS = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
# fields of an upgraded HTTP/1.1 request that describe the HTTP/1.1 connection, not the request
UPGRADE_FIELDS = frozenset(("connection", "upgrade", "http2-settings", "keep-alive", "te",
                            "transfer-encoding", "proxy-connection"))


def limits_for(config) -> Limits:
    return Limits(max_header_list_size=config.max_header_size)


class H2ServerConnection(asyncio.Protocol):
    def __init__(self, server, upgrade=None) -> None:
        self.server = server
        self.loop = server.loop
        config = server.config
        self.request_timeout = config.request_timeout
        self.keep_alive = config.keep_alive
        self.max_upload = config.max_upload_size
        self.session = H2Session(limits_for(config))
        self.streams: dict[int, H2Exchange] = {}
        self.blocked: set[H2Exchange] = set()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.shutting_down = False
        self.write_paused_since: float | None = None
        self.idle_since = time.monotonic()
        self._flush_scheduled = False
        self._upgrade = upgrade   # the HTTP/1.1 request that asked for h2c: stream 1
        self.pushes_in_flight = 0  # pushed streams promised and not yet complete
        self.environ_bases: dict = {}  # the streams' (see Exchange.environ_bases)
        # the fields plugins add to every response (skitai_register_response_fields), encoded
        self.extra_fields = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value
                             in server.kernel.response_fields.for_protocol(H2Exchange.protocol_name)]

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.client = transport.get_extra_info("peername") or ("", 0)
        self.sockname = transport.get_extra_info("sockname") or ("", 0)
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.server.connection_opened(self)
        request, self._upgrade = self._upgrade, None
        if request is None:
            self.session.start()
            self._write()
            return
        transport.write(SWITCHING_PROTOCOLS)
        self.session.start(request.header("http2-settings"))
        headers = [(name, value) for name, value in request.headers if name not in UPGRADE_FIELDS]
        exchange = H2Exchange(self, 1, request.method, request.target, headers)
        exchange.body = request.body  # read in full before the switch (RFC 7540 3.2)
        self._open(exchange)
        self._flush_now()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        now = time.monotonic()
        try:
            events = self.session.receive(data, now)
        except SessionError as error:
            log.debug("HTTP/2 connection from %s refused: %s", self.client, error)
            self._write()
            self.close()
            return
        # The read ends with a flush (below): responses made meanwhile (threads=0 answers
        # inline) need no flush callback of their own.
        self._flush_scheduled = True
        for event in events:
            kind = type(event)
            if kind is h2.events.DataReceived:
                self._on_data(event, now)
            elif kind is h2.events.RequestReceived:
                self._on_request(event, now)
            elif kind is h2.events.TrailersReceived:
                self._on_trailers(event, now)
            elif kind is h2.events.StreamEnded:
                self._on_end(event.stream_id)
            elif kind is h2.events.StreamReset:
                exchange = self.streams.get(event.stream_id)
                if exchange is not None:
                    self._drop(exchange, reset=None)
            elif kind is h2.events.ConnectionTerminated:
                # The client is leaving; h2 sends nothing after a GOAWAY it received.
                for exchange in list(self.streams.values()):
                    self._drop(exchange, reset=None)
                self.close()
                return
        self._flush_now()
        if self.session.closed or (self.shutting_down and not self.streams):
            self.close()  # closed: a flood of malformed requests got a GOAWAY

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for exchange in list(self.streams.values()):
            self._drop(exchange, reset=None)
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        self.write_paused_since = time.monotonic()

    def resume_writing(self) -> None:
        self.write_paused_since = None
        self.schedule_flush()

    # requests
    def _on_request(self, event: h2.events.RequestReceived, now: float) -> None:
        stream_id = event.stream_id
        session = self.session
        if session.goaway_sent and stream_id > session.last_stream_id:
            session.reset(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        try:
            method, target, headers, protocol = request_fields(event.headers)
        except (BadRequest, UnicodeError):
            session.reject(stream_id, now)
            return
        exchange = H2Exchange(self, stream_id, method, target, headers)
        if method == "CONNECT":
            exchange.connect_protocol = protocol  # no body: its DATA frames are the tunnel's
        elif event.stream_ended is None:
            exchange.body = SpooledBody()  # replaced below when the handler streams
        self._open(exchange)

    def _on_trailers(self, event: h2.events.TrailersReceived, now: float) -> None:
        """Malformed request trailers make the request malformed; the others end its body
        (`body.trailers`, set by the StreamEnded that h2 reports with them)."""
        exchange = self.streams.get(event.stream_id)
        try:
            check_trailers(event.headers)
        except BadRequest:
            if exchange is not None:
                self._drop(exchange, reset=None)
            self.session.reject(event.stream_id, now)
            return
        if exchange is not None:
            exchange.request_trailers = [(name.decode("latin-1"), value.decode("latin-1"))
                                         for name, value in event.headers]

    def _open(self, exchange: H2Exchange) -> None:
        self.streams[exchange.stream_id] = exchange
        # a handler that raises is answered 500 by the core's resolve, this stream alone
        handler = exchange.handler = self.server.resolve(exchange)
        if not exchange.body.complete:
            # only a request with a body to come can wait for 100 Continue: most have none
            exchange.expect_continue = (exchange.header("expect") or "").lower() == "100-continue"
            if not take_body(exchange, lambda: self._pause_stream(exchange),
                             lambda: self._resume_threadsafe(exchange), self.request_timeout,
                             self.max_upload, exchange.request_continue if exchange.expect_continue else None):
                return
            if handler.needs_full_body:
                if exchange.expect_continue:
                    self.send_continue(exchange)
                return  # dispatched when the body is complete
        dispatch(exchange, log)

    def push(self, parent: H2Exchange, block: list[tuple[bytes, bytes]], target: str,
             fields: list[tuple[str, str]]) -> None:
        """On the loop thread: PUSH_PROMISE on the parent's stream, then the promised GET is
        served like a received request (mount table, static files, apps, access log). The
        checks of `H2Exchange.push` are made again: the connection may have changed since."""
        if (parent.finished or parent.aborted or self.closed or self.shutting_down
                or not self.session.may_push(self.pushes_in_flight)):
            return
        stream_id = self.session.push(parent.stream_id, block)
        if stream_id is None:
            return
        self.pushes_in_flight += 1
        self._open(H2Exchange(self, stream_id, "GET", target, fields))
        self.schedule_flush()

    def _on_data(self, event: h2.events.DataReceived, now: float) -> None:
        exchange = self.streams.get(event.stream_id)
        if exchange is not None and exchange.method == "CONNECT":
            exchange.last_input = now
            if exchange.tunnel is not None:
                exchange.tunnel.feed(event.data, event.flow_controlled_length)
            else:  # sent before the answer: kept for the tunnel, uncredited, so bounded by the window
                exchange.early_data.append((event.data, event.flow_controlled_length))
            return
        if exchange is None or exchange.finished or exchange.body.complete or exchange.refused:
            return  # the response is complete or refused the body: the rest is dropped
        exchange.last_input = now
        body = exchange.body
        if body.received + len(event.data) > self.max_upload:
            refuse_body(exchange)
            return
        body.feed(event.data)
        if exchange.reading_paused:
            exchange.unacked += event.flow_controlled_length
        else:
            self.session.ack_stream(event.stream_id, event.flow_controlled_length)

    def _on_end(self, stream_id: int) -> None:
        exchange = self.streams.get(stream_id)
        if exchange is not None and exchange.method == "CONNECT":
            if exchange.tunnel is not None:
                exchange.tunnel.eof()
            else:
                exchange.peer_ended = True
            return
        if exchange is None or exchange.body.complete:
            return  # a request without a body (END_STREAM on its HEADERS)
        exchange.body.finish(exchange.request_trailers)
        if not exchange.dispatched and not exchange.finished:
            dispatch(exchange, log)

    def send_continue(self, exchange: H2Exchange) -> None:
        if not (exchange.continue_sent or exchange.response_started or exchange.finished
                or exchange.aborted or self.closed):
            exchange.continue_sent = True
            self.session.send_informational(exchange.stream_id, 100)
            self._write()

    # request body back-pressure: window credit is what lets the client send more
    def _pause_stream(self, exchange: H2Exchange) -> None:
        exchange.reading_paused = True

    def _resume_threadsafe(self, exchange: H2Exchange) -> None:
        exchange.call_soon_threadsafe(self._resume_stream, exchange)  # in order with its response calls

    def _resume_stream(self, exchange: H2Exchange) -> None:
        exchange.reading_paused = False
        credit, exchange.unacked = exchange.unacked, 0
        if not self.closed and self.streams.get(exchange.stream_id) is exchange:
            self.session.ack_stream(exchange.stream_id, credit)
            self._write()

    # tunnels (RFC 9113 8.5 CONNECT, RFC 8441 extended CONNECT)
    def open_tunnel(self, exchange: H2Exchange, protocol) -> None:
        """The handler accepted a CONNECT (its 2xx is queued): from now on the stream's
        DATA frames belong to `protocol`. Logged now, like HTTP/1.1's 101."""
        tunnel = exchange.tunnel = StreamTunnel(self, exchange, protocol)
        self.server.log_exchange(exchange)
        early, exchange.early_data = exchange.early_data, []
        tunnel.start(early)
        if exchange.peer_ended:
            tunnel.eof()
        self.schedule_flush()

    def credit_stream(self, exchange: H2Exchange, length: int) -> None:
        """A tunnel's protocol took `length` bytes: the client may send that much more."""
        if length and not self.closed and self.streams.get(exchange.stream_id) is exchange:
            self.session.ack_stream(exchange.stream_id, length)
            self.schedule_flush()

    # responses
    def block(self, exchange: H2Exchange) -> None:
        block_stream(exchange)
        self.blocked.add(exchange)
        if exchange.tunnel is not None:
            exchange.tunnel.protocol.pause_writing()

    def schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled = False
        if self.closed:
            return
        if self.write_paused_since is None:
            ended, failed = self.session.flush(time.monotonic(), WRITE_SLICE)
            for stream_id in failed:
                exchange = self.streams.get(stream_id)
                if exchange is None:
                    continue
                if self.session.may_send(stream_id):
                    log.warning("HTTP/2 file body of %s could not be read", exchange.target)
                    exchange.abort()
                else:
                    self.stream_gone(exchange)
            for stream_id in ended:
                exchange = self.streams.get(stream_id)
                if exchange is not None:
                    self.stream_done(exchange)
            if self.blocked:
                for exchange in list(self.blocked):
                    if self.session.pending(exchange.stream_id) <= LOW_WATER:
                        self.blocked.discard(exchange)
                        exchange.writable.set()
                        exchange.wake_drain()
                        if exchange.tunnel is not None:
                            exchange.tunnel.protocol.resume_writing()
            if self.session.cut_short:
                self.schedule_flush()  # the next slice after the loop's other work
        self._write()

    def stream_done(self, exchange: H2Exchange) -> None:
        """The response went out in full (END_STREAM sent)."""
        self.streams.pop(exchange.stream_id, None)
        self.blocked.discard(exchange)
        exchange.finished = True
        exchange.wake_drain()
        if exchange.tunnel is not None:
            exchange.tunnel.end(None)
        if not exchange.body.complete and not declared_body_received(exchange):
            # RFC 9113 8.1: a complete response ends the request too; stop the upload.
            self.session.reset(exchange.stream_id, ErrorCodes.NO_ERROR)
            exchange.body.fail(ClientDisconnected("the response was sent before the request body"))
        self._finished(exchange)

    def stream_gone(self, exchange: H2Exchange) -> None:
        """The client reset the stream before its answer went out (possibly in the very read
        that brought the request): what is left of the answer is dropped quietly."""
        self._drop(exchange, reset=None)

    def abort_stream(self, exchange: H2Exchange, cancelled: bool = False) -> None:
        self._drop(exchange, reset=ErrorCodes.CANCEL if cancelled else ErrorCodes.INTERNAL_ERROR)
        self.schedule_flush()

    def _drop(self, exchange: H2Exchange, reset: int | None) -> None:
        """The stream ends without a complete response (reset by either side or lost)."""
        self.streams.pop(exchange.stream_id, None)
        self.blocked.discard(exchange)
        exchange.aborted = True
        exchange.writable.set()  # wake a producer so it sees `aborted`
        exchange.wake_drain()
        exchange.body.fail(ClientDisconnected("the stream was reset"))
        if exchange.tunnel is not None:
            exchange.tunnel.end(ClientDisconnected("the stream was reset"))
        if reset is not None and not self.closed:
            self.session.reset(exchange.stream_id, reset)
        else:
            self.session.outboxes.pop(exchange.stream_id, None)
        # logged when an app had it (as aborted, 499, if its response had not started)
        self._finished(exchange, logged=exchange.response_started or exchange.dispatched)

    def _finished(self, exchange: H2Exchange, logged: bool = True) -> None:
        if exchange.stream_id % 2 == 0:
            self.pushes_in_flight -= 1
        if logged and exchange.tunnel is None:  # a tunnel was logged when it opened
            self.server.log_exchange(exchange)
        exchange.run_done_callbacks()
        if not self.streams:
            self.idle_since = time.monotonic()
            if self.shutting_down:
                self.loop.call_soon(self._close_when_flushed)

    def _close_when_flushed(self) -> None:
        if not self.streams:
            self._write()
            self.close()

    # output
    def _write(self) -> None:
        data = self.session.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    # timers (checked by the server's once-a-second sweep)
    def check_timeout(self, now: float) -> None:
        if self.closed:
            return
        if self.write_paused_since is not None and now - self.write_paused_since >= self.request_timeout:
            self.abort()  # the client stopped reading the socket
            return
        for stream_id in self.session.stalled(now, self.request_timeout):
            exchange = self.streams.get(stream_id)
            if exchange is not None:  # the stream stopped reading: its window stayed shut
                self.abort_stream(exchange, cancelled=True)
            else:
                self.session.reset(stream_id, ErrorCodes.CANCEL)
        for exchange in list(self.streams.values()):
            if (not exchange.dispatched and not exchange.body.complete
                    and now - exchange.last_input >= self.request_timeout):
                exchange.body.fail(ClientDisconnected("request body not received in time"))
                exchange.dispatched = True
                exchange.send_response(status_line(408), error_headers(), error_body(408))
        if not self.streams and now - self.idle_since >= self.keep_alive:
            self.session.goaway()
            self._write()
            self.close()
            return
        self._flush_now()

    # closing
    def close(self) -> None:
        """Shut our side first and close a moment later: closing with the peer's frames still
        unread makes the kernel send a reset that can destroy the GOAWAY just written."""
        if self.closed:
            return
        self.closed = True
        linger_then_close(self.transport, self.loop)

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def shutdown(self) -> None:
        """Graceful stop or reload: GOAWAY, finish the streams in flight, then close."""
        self.shutting_down = True
        if self.closed:
            return
        self.session.goaway()
        self._write()
        if not self.streams:
            self.close()


def declared_body_received(exchange: H2Exchange) -> bool:
    """Every byte the request's Content-Length announced has come, only its END_STREAM has not:
    a client may send that after the answer (httpx sends it in a DATA frame of its own, after the
    data), and one that finds its stream reset then (RFC 9113 8.1 allows the reset) fails a
    request it was answered (httpx: `LocalProtocolError`). So such a stream is left to end."""
    length = exchange.header("content-length")
    return length is not None and length.isdigit() and exchange.body.received >= int(length)
