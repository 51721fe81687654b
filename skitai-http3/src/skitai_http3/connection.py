"""One QUIC connection speaking HTTP/3: aioquic's sans-IO `QuicConnection` and `H3Connection`
joined to the server's handlers, one `H3Exchange` per request stream.

aioquic's protocol class owns the datagrams and the timers; this subclass turns HTTP/3 events
into exchanges (validated by `skitai.streamfields`, as HTTP/2's are), feeds request bodies with
the upload limit and timeouts of the core, and hands response bodies to aioquic as the client
acknowledges what its stream send buffers hold (`pump`, run before every transmission), so a
large body waits in the exchange's outbox (files unread) instead of in memory. It takes part in
the server's lifecycle like a TCP connection: the sweep's `check_timeout`, `shutdown` (GOAWAY,
finish the streams in flight, then close) and `abort`.
"""
from __future__ import annotations

import logging
import time

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import (
    H3_ALPN,
    ClosedCriticalStream,
    ErrorCode,
    FrameType,
    FrameUnexpected,
    H3Connection,
    MessageError,
    Setting,
    StreamType,
    encode_frame,
)
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.h3.exceptions import NoAvailablePushIDError
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    StopSendingReceived,
    StreamReset,
)

from skitai.budget import Budget
from skitai.plugin import ClientDisconnected, SpooledBody, error_body, error_headers, status_line
from skitai.streamexchange import block_stream, dispatch, refuse_body, take_body
from skitai.streamfields import BadRequest, check_trailers, request_fields

from .early import SAFE_METHODS, mark_early_streams
from .endpoint import Admission
from .exchange import H3Exchange
from .floods import PeerFloods
from .flow import follow_consumption, limit_streams
from .settings import Limits
from .steering import ConnectionIds, steer_connection_ids

log = logging.getLogger("skitai.http3")

CHUNK = 64 * 1024   # the most body data one DATA frame carries
# A graceful stop (a reload's retirement of the old workers) lets a connection still in its
# handshake complete it within HANDSHAKE_GRACE (its client may have to retransmit its last
# handshake packet: a reload's steering sends the first one to the new workers when it comes
# coalesced behind an Initial), then serves the requests its client sends within LATE_GRACE
# before the GOAWAY: a GOAWAY at once would refuse the requests sent with the handshake's end,
# before the client could have learnt of the stop.
HANDSHAKE_GRACE = 3.0
LATE_GRACE = 1.0


class ServerH3(H3Connection):
    """aioquic's HTTP/3 connection with the GOAWAY frame it does not send itself, announcing the
    largest header section the server takes (SETTINGS_MAX_FIELD_SECTION_SIZE, RFC 9114 7.2.4.1)
    and no extended CONNECT (RFC 9220),
    treating a malformed request as an error of its stream (RFC 9114 4.1.2), where aioquic
    would close the whole connection and every other request on it, and the end of the peer's
    QPACK encoder or decoder stream as the connection error RFC 9204 4.2 makes it, which aioquic
    checks for the control stream only."""

    def __init__(self, quic, max_field_section_size: int, on_malformed) -> None:
        self.max_field_section_size = max_field_section_size
        self.on_malformed = on_malformed
        self.malformed: set[int] = set()
        super().__init__(quic)

    def may_push(self) -> bool:
        """Whether the client's MAX_PUSH_ID leaves a push ID (a client that never sent one
        takes no pushes: Chromium, for one)."""
        return self._max_push_id is not None and self._next_push_id <= self._max_push_id

    def _receive_request_or_push_data(self, stream, data: bytes, stream_ended: bool) -> list:
        if stream.stream_id in self.malformed:
            return []  # what was in flight behind the malformed part
        try:
            return super()._receive_request_or_push_data(stream, data, stream_ended)
        except MessageError as error:
            self.malformed.add(stream.stream_id)
            self.on_malformed(stream.stream_id, error)
            return []

    def _receive_stream_data_uni(self, stream, data: bytes, stream_ended: bool) -> list:
        events = super()._receive_stream_data_uni(stream, data, stream_ended)
        if stream_ended and stream.stream_type in (StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER):
            raise ClosedCriticalStream("Closing a QPACK stream is not allowed")
        return events

    def _get_local_settings(self) -> dict[int, int]:
        return {**super()._get_local_settings(), Setting.MAX_FIELD_SECTION_SIZE: self.max_field_section_size,
                Setting.ENABLE_CONNECT_PROTOCOL: 0}  # no WebSocket over HTTP/3 (RFC 9220) yet

    def send_goaway(self, stream_id: int) -> None:
        """GOAWAY (RFC 9114 5.2): request streams from `stream_id` on will not be served."""
        self._quic.send_stream_data(self._local_control_stream_id,
                                    encode_frame(FrameType.GOAWAY, encode_uint_var(stream_id)))


def quic_held(quic, stream_id: int) -> int:
    """Bytes aioquic holds for a stream: its send buffer, from the lowest offset the peer has
    not acknowledged to the last handed over, what `pump` keeps under `Limits.quic_buffer`.
    Sent data counts until acknowledged because aioquic keeps it until then, and its congestion
    window, which bounds what is in flight, has no ceiling: counting only the unsent part let a
    large window (a fast path, or a peer slow to acknowledge) hold that much of a download."""
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    sender = stream.sender
    return sender._buffer_stop - sender._buffer_start


class H3ServerConnection(QuicConnectionProtocol):
    def __init__(self, quic, stream_handler=None, *, server, limits: Limits,
                 connection_ids: ConnectionIds, admission: Admission, early_data: bool = False) -> None:
        steer_connection_ids(quic, connection_ids)  # before aioquic builds any packet
        self.early: set[int] = set()     # request streams with data received in 0-RTT
        if early_data:
            mark_early_streams(quic, self.early)
        self.held: set[int] = set()      # streams whose body the app is not reading: no credit
        follow_consumption(quic, self.held, limits.stream_window)
        limit_streams(quic, limits.max_streams)
        self.floods = PeerFloods(quic, limits)
        super().__init__(quic, stream_handler)
        self.server = server
        self.loop = server.loop
        self.limits = limits
        self.admission = admission
        admission.handshaking.add(self)
        config = server.config
        self.request_timeout = config.request_timeout
        self.max_upload = config.max_upload_size
        self.max_header_size = config.max_header_size
        self.max_header_count = config.max_header_count
        self.extra_fields = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value
                             in server.kernel.response_fields.for_protocol(H3Exchange.protocol_name)]
        self.h3: ServerH3 | None = None
        self.streams: dict[int, H3Exchange] = {}
        self.stopped: set[int] = set()   # streams answered before their request ended
        self.blocked: set[H3Exchange] = set()
        self.client: tuple = ("", 0)
        self.sockname: tuple = ("", 0)
        self.opened = False
        self.handshaken = False
        self.closed = False
        self.shutting_down = False
        self.goaway_id: int | None = None
        self.next_stream_id = 0          # above the highest request stream seen
        self.pushes_in_flight = 0        # pushed responses promised and not yet complete
        # the streams' (see Exchange.environ_bases); `client` is set by the first datagram,
        # before any stream
        self.environ_bases: dict = {}
        self._pump_scheduled = False
        self._pumping = False
        # flood protections, as HTTP/2's: requests the client cancels (CVE-2023-44487's rapid
        # reset) and malformed requests each cost from a budget; overspent, the connection ends
        self.resets = Budget(limits.reset_burst, limits.reset_rate)
        self.malformed = Budget(limits.malformed_burst, limits.malformed_rate)

    # datagrams (aioquic's protocol calls `transmit` after each one and after each timer)
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.sockname = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.client[0]:
            self.client = addr[:2]
        super().datagram_received(data, addr)
        if self.floods.exceeded is not None and not self.closed:
            self._refuse_connection(self.floods.exceeded)

    def transmit(self) -> None:
        if not self.closed:
            self.pump()
        super().transmit()

    # QUIC and HTTP/3 events
    def quic_event_received(self, event) -> None:
        kind = type(event)
        if self.closed:  # ended by us (GOAWAY done, refused, aborted): only its end matters
            if kind is ConnectionTerminated:
                self._terminated()
            return
        if kind is ProtocolNegotiated:
            if event.alpn_protocol in H3_ALPN:
                self.h3 = ServerH3(self._quic, self.max_header_size, self._on_malformed)
        elif kind is HandshakeCompleted:
            self.handshaken = True
            self.admission.handshaking.discard(self)
            self._mark_opened()
            if self.shutting_down:  # the stop began during the handshake
                self.loop.call_later(LATE_GRACE, self._go_away)
        elif kind is ConnectionTerminated:
            self._terminated()
            return
        elif kind is StreamReset or kind is StopSendingReceived:
            exchange = self.streams.get(event.stream_id)
            if exchange is not None:
                self._drop(exchange, reset=None if kind is StreamReset else ErrorCode.H3_REQUEST_CANCELLED)
            if kind is StreamReset and not self.resets.spend(time.monotonic()):
                self._refuse_connection("too many requests cancelled by the client (rapid reset)")
                return
        if self.h3 is None:
            return
        now = time.monotonic()
        for h3_event in self.h3.handle_event(event):
            h3_kind = type(h3_event)
            if h3_kind is HeadersReceived:
                self._on_headers(h3_event, now)
            elif h3_kind is DataReceived:
                self._on_data(h3_event, now)

    def _on_headers(self, event: HeadersReceived, now: float) -> None:
        stream_id = event.stream_id
        exchange = self.streams.get(stream_id)
        if exchange is not None or stream_id in self.stopped:
            self._on_trailers(event, exchange)
            return
        if stream_id >= self.next_stream_id:
            self.next_stream_id = stream_id + 4
            self.floods.request_made()
        if self.goaway_id is not None and stream_id >= self.goaway_id:
            self._refuse_stream(stream_id, ErrorCode.H3_REQUEST_REJECTED, event.stream_ended)
            return
        if (len(event.headers) > self.max_header_count
                or sum(len(name) + len(value) + 32 for name, value in event.headers) > self.max_header_size):
            self._refuse_head(stream_id, event.stream_ended, 431)  # RFC 9110's size: name, value, 32
            return
        try:
            method, target, headers, protocol = request_fields(event.headers)
        except (BadRequest, UnicodeError):
            self._refuse_stream(stream_id, ErrorCode.H3_MESSAGE_ERROR, event.stream_ended)
            return
        if stream_id in self.early and method not in SAFE_METHODS:
            # replayable early data (RFC 8470 5.2): the client retries after the handshake
            self._refuse_head(stream_id, event.stream_ended, 425,
                              f"{method} is not served from 0-RTT early data")
            return
        if method == "CONNECT":
            # RFC 9220 (WebSocket over HTTP/3) and CONNECT tunnels are not implemented (and the
            # SETTINGS say so: SETTINGS_ENABLE_CONNECT_PROTOCOL is 0): refused with 501
            self._refuse_head(stream_id, event.stream_ended, 501,
                              "CONNECT and WebSocket over HTTP/3 (RFC 9220) are not implemented")
            return
        exchange = H3Exchange(self, stream_id, method, target, headers)
        if not event.stream_ended:
            exchange.body = SpooledBody()  # replaced in `_open` when the handler streams
        self._open(exchange)

    def _refuse_connection(self, reason: str) -> None:
        """An abusive peer: the connection ends with H3_EXCESSIVE_LOAD."""
        log.debug("HTTP/3 connection from %s refused: %s", self.client, reason)
        for exchange in list(self.streams.values()):
            self._drop(exchange, reset=None)
        self.close(ErrorCode.H3_EXCESSIVE_LOAD, reason)
        self._mark_closed()

    def _refuse_stream(self, stream_id: int, error_code: int, ended: bool) -> None:
        """Reset a request's stream and, when its body is still coming, ask the client to stop;
        too many such requests end the connection."""
        if error_code == ErrorCode.H3_MESSAGE_ERROR and not self.malformed.spend(time.monotonic()):
            self._refuse_connection("malformed requests flood")
            return
        self._reset(stream_id, error_code)
        if not ended:
            self.stopped.add(stream_id)
            self._stop(stream_id)

    def _on_malformed(self, stream_id: int, error: Exception) -> None:
        """A request (or its trailers) aioquic found malformed: its stream alone is reset."""
        log.debug("HTTP/3 request on stream %d from %s is malformed: %s", stream_id, self.client, error)
        exchange = self.streams.get(stream_id)
        if exchange is not None:
            self._drop(exchange, reset=ErrorCode.H3_MESSAGE_ERROR)
        else:
            self._refuse_stream(stream_id, ErrorCode.H3_MESSAGE_ERROR, False)

    def _refuse_head(self, stream_id: int, ended: bool, status: int, detail: str = "") -> None:
        """Answer a request with an error status without dispatching it: 431 for a header section
        over the limits (RFC 9114 4.2.2), 425 for an unsafe method in early data, 501 for a
        CONNECT."""
        body = error_body(status, detail)
        fields = [(name.lower().encode(), value.encode()) for name, value in error_headers()]
        self.h3.send_headers(stream_id, [(b":status", b"%d" % status), *fields,
                                         (b"content-length", b"%d" % len(body))])
        self.h3.send_data(stream_id, body, end_stream=True)
        if not ended:
            self.stopped.add(stream_id)
            self._stop(stream_id)
        self.server.log_protocol_error(self, status, len(body))
        self._transmit_soon()

    def _on_trailers(self, event: HeadersReceived, exchange: H3Exchange | None) -> None:
        """Malformed request trailers make the request malformed; the others end its body
        (`body.trailers`, for handlers that relay them, as over HTTP/1.1 and HTTP/2)."""
        try:
            check_trailers(event.headers)
        except BadRequest:
            if exchange is not None:
                self._drop(exchange, reset=ErrorCode.H3_MESSAGE_ERROR)
            return
        if event.stream_ended and exchange is not None:
            self._on_end(exchange, [(name.decode("latin-1"), value.decode("latin-1"))
                                    for name, value in event.headers])

    def _open(self, exchange: H3Exchange) -> None:
        self.streams[exchange.stream_id] = exchange
        handler = exchange.handler = self.server.resolve(exchange)
        if not exchange.body.complete:
            if not take_body(exchange, lambda: self._pause_stream(exchange),
                             lambda: self._resume_threadsafe(exchange), self.request_timeout,
                             self.max_upload, exchange.request_continue):
                return
            if handler.needs_full_body:
                return  # dispatched when the body is complete
        dispatch(exchange, log)

    def may_push(self) -> bool:
        return (not self.closed and not self.shutting_down and self.h3 is not None and self.h3.may_push()
                and self.pushes_in_flight < self.limits.max_pushed_streams)

    def push(self, parent: H3Exchange, block: list[tuple[bytes, bytes]], target: str,
             fields: list[tuple[str, str]]) -> None:
        """On the loop thread: PUSH_PROMISE on the parent's stream, then the promised GET is
        served like a received request on the push stream (mount table, static files, apps,
        access log). The checks of `H3Exchange.push` are made again: things may have changed."""
        if parent.finished or parent.aborted or not self.may_push():
            return
        try:
            stream_id = self.h3.send_push_promise(parent.stream_id, block)
        except (NoAvailablePushIDError, FrameUnexpected):
            return
        self.pushes_in_flight += 1
        self._open(H3Exchange(self, stream_id, "GET", target, fields))
        self._transmit_soon()

    def _on_data(self, event: DataReceived, now: float) -> None:
        exchange = self.streams.get(event.stream_id)
        if exchange is None or exchange.finished or exchange.body.complete or exchange.refused:
            return  # the response is complete or refused the body: the rest is dropped
        exchange.last_input = now
        body = exchange.body
        if event.data:
            if body.received + len(event.data) > self.max_upload:
                refuse_body(exchange)
                return
            body.feed(event.data)
        if event.stream_ended:
            self._on_end(exchange)

    def _on_end(self, exchange: H3Exchange, trailers: list[tuple[str, str]] | None = None) -> None:
        if exchange.body.complete:
            return
        exchange.body.finish(trailers)
        if not exchange.dispatched and not exchange.finished:
            dispatch(exchange, log)

    def send_continue(self, exchange: H3Exchange) -> None:
        if not (exchange.response_started or exchange.finished or exchange.aborted or self.closed):
            self.h3.send_headers(exchange.stream_id, [(b":status", b"100")])
            self.transmit()

    # request body back-pressure
    def _pause_stream(self, exchange: H3Exchange) -> None:
        self.held.add(exchange.stream_id)

    def _resume_threadsafe(self, exchange: H3Exchange) -> None:
        exchange.call_soon_threadsafe(self._resume_stream, exchange)  # in order with its response calls

    def _resume_stream(self, exchange: H3Exchange) -> None:
        if exchange.stream_id in self.held:
            self.held.discard(exchange.stream_id)
            if not self.closed:
                self.transmit()  # the credit goes out

    # responses
    def send_head(self, exchange: H3Exchange, headers: list[tuple[bytes, bytes]], end: bool) -> bool:
        """HEADERS of a response; False when the stream is gone (the exchange is dropped)."""
        if self.closed or self.streams.get(exchange.stream_id) is not exchange:
            return False
        self.h3.send_headers(exchange.stream_id, headers, end_stream=end)
        exchange.head_sent = True
        self._transmit_soon()
        return True

    def block(self, exchange: H3Exchange) -> None:
        block_stream(exchange)
        self.blocked.add(exchange)

    def schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self.loop.call_soon(self.transmit)

    def pump(self) -> None:
        """Hand queued response bodies to aioquic while what it holds of each stream (sent and
        not acknowledged, or not sent) is under `Limits.quic_buffer`; end the streams whose
        body is all handed over."""
        self._pump_scheduled = False
        if self._pumping or self.h3 is None:
            return
        self._pumping = True
        try:
            for exchange in list(self.streams.values()):
                if exchange.head_sent and not exchange.aborted:
                    self._pump_stream(exchange)
        finally:
            self._pumping = False

    def _pump_stream(self, exchange: H3Exchange) -> None:
        box = exchange.outbox
        stream_id = exchange.stream_id
        if box.pieces:
            room = self.limits.quic_buffer - quic_held(self._quic, stream_id)
            while box.pieces and room > 0:
                try:
                    data = box.take(min(room, CHUNK))
                except OSError:
                    log.warning("HTTP/3 file body of %s could not be read", exchange.target)
                    self._drop(exchange, reset=ErrorCode.H3_INTERNAL_ERROR)
                    return
                if type(data) is memoryview:
                    data = bytes(data)  # aioquic's frame encoder takes bytes only
                self.h3.send_data(stream_id, data, end_stream=False)
                exchange.handed += len(data)
                exchange.last_output = time.monotonic()
                room -= len(data)
        if exchange in self.blocked and box.pending <= self.limits.low_water:
            self.blocked.discard(exchange)
            exchange.writable.set()
            exchange.wake_drain()
        if box.ending and not box.pieces:
            if box.trailers is not None:
                self.h3.send_headers(stream_id, box.trailers, end_stream=True)
            else:
                self.h3.send_data(stream_id, b"", end_stream=True)
            self.stream_done(exchange)

    def stream_done(self, exchange: H3Exchange) -> None:
        """The response is complete (its end handed to aioquic)."""
        self.streams.pop(exchange.stream_id, None)
        self.blocked.discard(exchange)
        exchange.finished = True
        exchange.wake_drain()
        if not exchange.body.complete:
            # RFC 9114 4.1: a complete response may end the request early; stop the upload.
            self.stopped.add(exchange.stream_id)
            self._stop(exchange.stream_id)
            exchange.body.fail(ClientDisconnected("the response was sent before the request body"))
        self._finished(exchange)
        self._transmit_soon()

    def abort_stream(self, exchange: H3Exchange, cancelled: bool = False) -> None:
        self._drop(exchange, reset=ErrorCode.H3_REQUEST_CANCELLED if cancelled
                   else ErrorCode.H3_INTERNAL_ERROR)
        self._transmit_soon()

    def _drop(self, exchange: H3Exchange, reset: int | None) -> None:
        """The stream ends without a complete response (reset by either side, or lost)."""
        if self.streams.pop(exchange.stream_id, None) is None:
            return
        self.blocked.discard(exchange)
        exchange.aborted = True
        exchange.writable.set()  # wake a producer so it sees `aborted`
        exchange.wake_drain()
        exchange.body.fail(ClientDisconnected("the stream was reset"))
        if reset is not None and not self.closed:
            self._reset(exchange.stream_id, reset)
            if not exchange.body.complete:
                self._stop(exchange.stream_id)
        self._finished(exchange, logged=exchange.response_started or exchange.dispatched)

    def _finished(self, exchange: H3Exchange, logged: bool = True) -> None:
        self.held.discard(exchange.stream_id)
        if exchange.stream_id % 4 == 3:  # a push stream
            self.pushes_in_flight -= 1
        if logged:
            self.server.log_exchange(exchange)
        exchange.run_done_callbacks()
        if self.goaway_id is not None and not self.streams:
            self.loop.call_soon(self._close_when_done)

    def _reset(self, stream_id: int, error_code: int) -> None:
        try:
            self._quic.reset_stream(stream_id, error_code)
        except (ValueError, AssertionError):
            pass  # the stream is already gone on our side
        self._transmit_soon()

    def _stop(self, stream_id: int) -> None:
        try:
            self._quic.stop_stream(stream_id, ErrorCode.H3_NO_ERROR)
        except ValueError:
            pass

    # timers (checked by the server's once-a-second sweep); idle connections are aioquic's
    # (its idle timeout is the server's keep-alive)
    def check_timeout(self, now: float) -> None:
        if self.closed:
            return
        for exchange in list(self.streams.values()):
            if exchange.outbox.pieces and now - exchange.last_output >= self.request_timeout:
                self._drop(exchange, reset=ErrorCode.H3_REQUEST_CANCELLED)  # the client stopped reading
            elif (not exchange.dispatched and not exchange.body.complete
                    and now - exchange.last_input >= self.request_timeout):
                exchange.body.fail(ClientDisconnected("request body not received in time"))
                exchange.dispatched = True
                exchange.send_response(status_line(408), error_headers(), error_body(408))
        self.transmit()

    # closing
    def _terminated(self) -> None:
        """aioquic ended the connection (idle timeout, the peer closed it, a protocol error)."""
        for exchange in list(self.streams.values()):
            self._drop(exchange, reset=None)
        self._mark_closed()

    def _mark_opened(self) -> None:
        """The server counts the connection (and a graceful stop waits for it) from here."""
        if not self.opened:
            self.opened = True
            self.server.connection_opened(self)

    def _mark_closed(self) -> None:
        self.admission.handshaking.discard(self)
        if not self.closed:
            self.closed = True
            if self.opened:
                self.server.connection_closed(self)

    def hold_for_stop(self) -> None:
        """The graceful stop begins during the handshake (`Admission.close`): the server waits
        for this connection too, as for those open before."""
        if not self.closed:
            self._mark_opened()

    def shutdown(self) -> None:
        """Graceful stop or reload: GOAWAY, finish the streams in flight, then close; a
        connection still in its handshake is given its graces first (`HANDSHAKE_GRACE`)."""
        self.shutting_down = True
        if not self.handshaken and not self.closed:
            self.loop.call_later(HANDSHAKE_GRACE, self._handshake_overdue)
            return
        self._go_away()

    def _handshake_overdue(self) -> None:
        if not self.handshaken:
            self.abort()

    def _go_away(self) -> None:
        if self.closed or self.h3 is None:
            self.abort()
            return
        if self.goaway_id is None:
            self.goaway_id = self.next_stream_id
            self.h3.send_goaway(self.goaway_id)
            self.transmit()
        if not self.streams:
            self._close_when_done()

    def _close_when_done(self) -> None:
        if not self.streams and not self.closed:
            self.close(ErrorCode.H3_NO_ERROR)
            self._mark_closed()

    def abort(self) -> None:
        if not self.closed:
            for exchange in list(self.streams.values()):
                self._drop(exchange, reset=None)
            self.close(ErrorCode.H3_NO_ERROR, "server stopping")
            self._mark_closed()
