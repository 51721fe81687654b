"""One HTTP/2 stream as a Skitai `Exchange`, so every mounted handler (WSGI apps, static files,
plugin handlers) serves it unchanged.

The response methods turn into HEADERS and queued DATA on the connection's sans-IO session;
`writable` is per stream and clears while the stream's unsent data is above a high-water mark,
so an app streaming into a closed flow-control window waits instead of filling memory.
Trailers set on the exchange end the stream as a last HEADERS frame; `push` promises a
same-origin GET that the connection then serves through the mount table like any request.
A CONNECT that its handler accepts becomes a tunnel (`open_tunnel`): a plain one (RFC 9113 8.5,
`:authority` only: a proxy's TCP tunnel) or an extended one (RFC 8441: a WebSocket); the stream
stays open and its DATA frames carry the tunnelled bytes both ways.
What every multiplexed protocol does alike (the head's fields, the Content-Length cut, push
checks) is the core's `skitai.streamexchange.StreamExchange`; this class adds the protocol's
wire.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from skitai.streamexchange import StreamExchange
from skitai.streamfields import trailer_fields

from .tunnel import StreamTunnel

if TYPE_CHECKING:
    from .connection import H2ServerConnection

HIGH_WATER = StreamExchange.high_water
LOW_WATER = 64 * 1024


class H2Exchange(StreamExchange):
    protocol_name = "HTTP/2.0"
    __slots__ = ("expect_continue", "continue_sent", "reading_paused", "unacked", "tunnel", "early_data",
                 "peer_ended", "request_trailers")   # as StreamExchange's, see there

    def __init__(self, conn: "H2ServerConnection", stream_id: int, method: str, target: str,
                 headers: list[tuple[str, str]]) -> None:
        super().__init__(conn, stream_id, method, target, headers, "2.0", conn.scheme)
        self.expect_continue = False   # read by the connection when a body is to come (`_open`)
        self.continue_sent = False
        self.reading_paused = False
        self.unacked = 0            # body bytes received while paused, credited on resume
        self.tunnel: StreamTunnel | None = None      # once a CONNECT was accepted
        self.early_data: list[tuple[bytes, int]] = []  # its DATA before that
        self.peer_ended = False     # the client's END_STREAM came before the tunnel opened
        self.request_trailers: list[tuple[str, str]] | None = None  # until the body ends with them

    # StreamExchange's protocol specifics
    def _write_head(self, code: int, fields: list[tuple[bytes, bytes]], end: bool) -> bool:
        if not self.conn.session.send_head(self.stream_id, code, fields, end_stream=end):
            self.conn.stream_gone(self)  # the client reset the stream: the answer is dropped
            return False
        return True

    def _write_whole(self, code: int, fields: list[tuple[bytes, bytes]], body: bytes) -> bool | None:
        sent = self.conn.session.send_response(self.stream_id, code, fields, body)
        if sent is False:
            self.conn.stream_gone(self)
        return sent

    def _head_ended(self) -> None:
        self.conn.stream_done(self)
        self.conn.schedule_flush()

    def _enqueue(self, piece) -> int:
        return self.conn.session.queue(self.stream_id, piece)

    def _kick(self) -> None:
        self.conn.schedule_flush()

    def _may_push(self) -> bool:
        conn = self.conn
        return (self.stream_id % 2 != 0 and self.pushes < conn.session.limits.max_pushes_per_request
                and not conn.shutting_down and conn.session.may_push(conn.pushes_in_flight))

    def finish(self) -> None:
        if self.finished or self.aborted or self._no_body:
            return
        if self._remaining:
            # Shorter than its Content-Length: a reset tells the client the body is incomplete.
            self.abort()
            return
        trailers = self.trailers
        if trailers is not None:
            trailers = trailer_fields(trailers)
        if self.conn.session.end(self.stream_id, trailers):
            self.conn.stream_done(self)
        self.conn.schedule_flush()

    def open_tunnel(self, status: str, headers: list[tuple[str, str]], protocol) -> None:
        if self.finished or self.aborted or self.tunnel is not None:
            return
        if self.method != "CONNECT":
            raise RuntimeError("only a CONNECT (RFC 9113 8.5, RFC 8441) can become a tunnel")
        self._send_head(status, headers, None, False)  # HEADERS without END_STREAM
        if not self.aborted:
            self.conn.open_tunnel(self, protocol)

    def queue_tunnel_data(self, data: bytes) -> None:
        self.bytes_sent += len(data)
        if self.conn.session.queue(self.stream_id, data) > HIGH_WATER:
            self.conn.block(self)
        self.conn.schedule_flush()

    def request_continue(self) -> None:
        if self.expect_continue and not self.continue_sent:
            self.call_soon_threadsafe(self.conn.send_continue, self)  # in order with the response
