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
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Sequence

from skitai.plugin import BodyPiece, Exchange, FileSegment, body_length
from skitai.push import on_loop, promised_request, push_target
from skitai.streamfields import BadRequest, response_fields, trailer_fields

from .tunnel import StreamTunnel

if TYPE_CHECKING:
    from .connection import H2ServerConnection

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
# The `writable` of every stream until it first blocks (never cleared): most responses never
# wait on flow control, and an Event per stream cost more than the rest of its bookkeeping.
ALWAYS_WRITABLE = threading.Event()
ALWAYS_WRITABLE.set()
class H2Exchange(Exchange):
    protocol_name = "HTTP/2.0"

    def __init__(self, conn: "H2ServerConnection", stream_id: int, method: str, target: str,
                 headers: list[tuple[str, str]]) -> None:
        path, _, query = target.partition("?")
        super().__init__(conn.loop, method, target, path, query, "2.0", headers, conn.scheme,
                         conn.client, conn.sockname, ALWAYS_WRITABLE)
        self.conn = conn
        self.stream_id = stream_id
        self.dispatched = False
        self.expect_continue = (self.header("expect") or "").lower() == "100-continue"
        self.continue_sent = False
        self.reading_paused = False
        self.refused = False        # the body went past the upload limit: the rest is dropped
        self.unacked = 0            # body bytes received while paused, credited on resume
        self.last_input = time.monotonic()
        self._no_body = False
        self._remaining: int | None = None   # what the declared Content-Length still allows
        self.pushes = 0             # promises made on this stream (server push)
        self.tunnel: StreamTunnel | None = None      # once a CONNECT was accepted
        self.early_data: list[tuple[bytes, int]] = []  # its DATA before that
        self.peer_ended = False     # the client's END_STREAM came before the tunnel opened
        self.request_trailers: list[tuple[str, str]] | None = None  # until the body ends with them

    # response head
    def _send_head(self, status: str, headers: list[tuple[str, str]], length: int | None,
                   empty: bool) -> None:
        code = int(status[:3])
        self.status = code
        self.responded_at = time.monotonic()
        out, declared = response_fields(headers, self.conn.extra_fields)
        self._no_body = self.method == "HEAD" or code in (204, 304)
        if declared is None and length is not None and not self._no_body:
            declared = length
            out.append((b"content-length", b"%d" % length))
        self._remaining = None if self._no_body else declared
        empty = empty and self.trailers is None  # trailers end the stream instead
        if not self.conn.session.send_head(self.stream_id, code, out, end_stream=self._no_body or empty):
            self.conn.stream_gone(self)  # the client reset the stream: the answer is dropped
            return
        if self._no_body or empty:
            self._no_body = True
            self.conn.stream_done(self)
            self.conn.schedule_flush()

    # response interface
    def send_response(self, status: str, headers: list[tuple[str, str]],
                      body: bytes | Sequence[BodyPiece] = b"") -> None:
        if self.finished or self.aborted:
            return
        pieces = [body] if isinstance(body, (bytes, bytearray, memoryview)) else list(body)
        length = body_length(pieces)
        self._send_head(status, headers, length, length == 0)
        if self._no_body or self.aborted:
            return
        for piece in pieces:
            self._queue(piece)
        self.finish()

    def send_head(self, status: str, headers: list[tuple[str, str]]) -> None:
        if self.finished or self.aborted:
            return
        self._send_head(status, headers, None, False)

    def send_data(self, data: bytes) -> None:
        if self.finished or self.aborted or self._no_body or not data:
            return
        self._queue(data)
        self.conn.schedule_flush()

    def _queue(self, piece: bytes | FileSegment) -> None:
        size = piece.count if isinstance(piece, FileSegment) else len(piece)
        if self._remaining is not None:
            if size > self._remaining:  # more than its Content-Length: the excess is dropped
                size = self._remaining
                piece = (FileSegment(piece.file, piece.offset, size) if isinstance(piece, FileSegment)
                         else piece[:size])
            self._remaining -= size
        if size:
            self.bytes_sent += size
            if self.conn.session.queue(self.stream_id, piece) > HIGH_WATER:
                self.conn.block(self)

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
        self.conn.session.end(self.stream_id, trailers)
        self.conn.schedule_flush()

    def abort(self) -> None:
        if not (self.finished or self.aborted):
            self.conn.abort_stream(self)

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
            self.loop.call_soon_threadsafe(self.conn.send_continue, self)

    def push(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> bool:
        """Promise `GET path` (same origin only) and serve it on a stream of its own; see
        `Exchange.push`. Checked here on the caller's thread, promised on the loop thread in
        order with the response calls that follow, so the PUSH_PROMISE precedes the response
        that refers to the pushed resource."""
        conn = self.conn
        authority = self.header("host")
        if (self.stream_id % 2 == 0 or authority is None or self.finished or self.aborted
                or self.pushes >= conn.session.limits.max_pushes_per_request
                or conn.shutting_down or not conn.session.may_push(conn.pushes_in_flight)):
            return False  # a pushed response cannot push; no origin to push for; limits
        target = push_target(path, self.scheme, authority)
        if target is None:
            return False
        try:
            block, fields = promised_request(self.scheme, authority, target, self.headers, headers)
        except BadRequest:
            return False
        self.pushes += 1
        if on_loop(self.loop):
            conn.push(self, block, target, fields)
        else:
            self.loop.call_soon_threadsafe(conn.push, self, block, target, fields)
        return True
