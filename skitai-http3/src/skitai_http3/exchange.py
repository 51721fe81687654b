"""One HTTP/3 request stream as a Skitai `Exchange`, so every mounted handler (WSGI apps, static
files, plugin handlers) serves it unchanged.

The response methods turn into a HEADERS frame and a queued body (`skitai.outbox.Outbox`) that
the connection hands to aioquic as the stream's send buffer drains (`H3ServerConnection.pump`);
`writable` clears while the queued body is above the high-water mark, so an app streaming a large
body waits instead of filling memory. Trailers end the stream as a last HEADERS frame.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Sequence

from skitai.outbox import Outbox
from skitai.plugin import BodyPiece, Exchange, FileSegment, body_length
from skitai.push import on_loop, promised_request, push_target
from skitai.streamfields import BadRequest, response_fields, trailer_fields

if TYPE_CHECKING:
    from .connection import H3ServerConnection

# The `writable` of every stream until it first blocks (never cleared): most responses never
# wait, and an Event per stream costs more than the rest of its bookkeeping.
ALWAYS_WRITABLE = threading.Event()
ALWAYS_WRITABLE.set()


class H3Exchange(Exchange):
    protocol_name = "HTTP/3.0"

    def __init__(self, conn: "H3ServerConnection", stream_id: int, method: str, target: str,
                 headers: list[tuple[str, str]]) -> None:
        path, _, query = target.partition("?")
        super().__init__(conn.loop, method, target, path, query, "3.0", headers, "https",
                         conn.client, conn.sockname, ALWAYS_WRITABLE)
        self.conn = conn
        self.stream_id = stream_id
        self.dispatched = False
        self.refused = False        # the body went past the upload limit: the rest is dropped
        self.last_input = self.last_output = time.monotonic()   # the stall checks' clocks
        self.outbox = Outbox()
        self.handed = 0             # body bytes given to aioquic so far
        self.head_sent = False
        self.pushes = 0             # promises made for this request
        self._no_body = False
        self._remaining: int | None = None

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
        end = self._no_body or (empty and self.trailers is None)
        if not self.conn.send_head(self, [(b":status", b"%d" % code), *out], end):
            return
        if end:
            self._no_body = True
            self.conn.stream_done(self)

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
        self.conn.schedule_pump()

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
            self.outbox.add(piece)
            if self.outbox.pending > self.conn.limits.high_water:
                self.conn.block(self)

    def finish(self) -> None:
        if self.finished or self.aborted or self._no_body or self.outbox.ending:
            return
        if self._remaining:
            # Shorter than its Content-Length: a reset tells the client the body is incomplete.
            self.abort()
            return
        self.outbox.ending = True
        if self.trailers is not None:
            self.outbox.trailers = trailer_fields(self.trailers)
        self.conn.schedule_pump()

    def abort(self) -> None:
        if not (self.finished or self.aborted):
            self.conn.abort_stream(self)

    def request_continue(self) -> None:
        """HTTP/3 clients do not wait for `100 Continue` (RFC 9114 4.1: interim responses are
        allowed, and a client that sent `Expect` gets one): sent once, from the loop thread."""
        if (self.header("expect") or "").lower() == "100-continue":
            self.loop.call_soon_threadsafe(self.conn.send_continue, self)

    def push(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> bool:
        """Promise `GET path` (same origin only) and serve it on a push stream; see
        `Exchange.push`. Checked here on the caller's thread, promised on the loop thread in
        order with the response calls that follow, so the PUSH_PROMISE precedes the response
        that refers to the pushed resource."""
        conn = self.conn
        authority = self.header("host")
        if (self.stream_id % 4 != 0 or authority is None or self.finished or self.aborted
                or self.pushes >= conn.limits.max_pushes_per_request or not conn.may_push()):
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
