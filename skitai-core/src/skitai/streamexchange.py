"""What a request on a multiplexed connection (an HTTP/2 stream, an HTTP/3 request stream) does
the same way whatever the protocol, kept here once for the plugins that serve one.

`StreamExchange` is the `Exchange` of one such stream: the response head's fields and declared
length, a body cut to its Content-Length, the checks before a server push. What differs per
protocol (how a head, a body piece and a push reach the wire) is a few small methods the
plugin's subclass provides. The connection side shares `dispatch`, `take_body`, `refuse_body`
and `block_stream`: handing a request to its handler, taking its body as it comes, the 413 of an
upload over the limit, and the per-stream back-pressure switch.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Sequence

from .exchange import ALWAYS_WRITABLE
from .plugin import (
    BodyPiece,
    ClientDisconnected,
    Exchange,
    FileSegment,
    StreamedBody,
    body_length,
    error_body,
    error_headers,
    status_line,
)
from .push import on_loop, promised_request, push_target
from .streamfields import BadRequest, response_fields


class BodyTooLarge(ClientDisconnected):
    """The stream's request body went past the maximum upload size."""


class StreamExchange(Exchange):
    """One request stream of a multiplexed connection `conn` (which has `loop`, `client`,
    `sockname`, `environ_bases`, `extra_fields`, `stream_done`, `abort_stream` and `push`).

    A subclass provides `_write_head` (send the head; False when the stream is gone),
    `_head_ended` (after a head that ended the stream), `_enqueue` (queue a body piece, return
    the stream's unsent bytes), `_kick` (get queued data moving) and `_may_push` (whether this
    stream may promise a push now: not a pushed one, under the limits). It may provide
    `_write_whole`: a response whose body is one bytes piece (most answers) then goes out head
    and body together, without being queued."""

    high_water = 256 * 1024   # unsent bytes above which the stream's producer waits
    # Per-stream state in slots, which take no room in the attribute layout CPython shares
    # among an exchange's other attributes (see `Exchange.__init__`): with the protocols' own
    # state too, a stream's exchange had gone past it and got a dict of its own, every one.
    __slots__ = ("conn", "environ_bases", "stream_id", "dispatched", "refused", "last_input", "pushes",
                 "_no_body", "_remaining")

    def __init__(self, conn, stream_id: int, method: str, target: str,
                 headers: list[tuple[str, str]], version: str, scheme: str) -> None:
        path, _, query = target.partition("?")
        super().__init__(conn.loop, method, target, path, query, version, headers, scheme,
                         conn.client, conn.sockname, ALWAYS_WRITABLE)
        self.conn = conn
        self.environ_bases = conn.environ_bases
        self.stream_id = stream_id
        self.dispatched = False
        self.refused = False        # the body went past the upload limit: the rest is dropped
        self.last_input = time.monotonic()
        self.pushes = 0             # promises made for this request (server push)
        self._no_body = False
        self._remaining: int | None = None   # what the declared Content-Length still allows

    # protocol specifics
    def _write_head(self, code: int, fields: list[tuple[bytes, bytes]], end: bool) -> bool:
        raise NotImplementedError("StreamExchange._write_head")

    def _head_ended(self) -> None:
        raise NotImplementedError("StreamExchange._head_ended")

    def _enqueue(self, piece: bytes | FileSegment) -> int:
        raise NotImplementedError("StreamExchange._enqueue")

    def _kick(self) -> None:
        raise NotImplementedError("StreamExchange._kick")

    def _may_push(self) -> bool:
        raise NotImplementedError("StreamExchange._may_push")

    def _write_whole(self, code: int, fields: list[tuple[bytes, bytes]], body: bytes) -> bool | None:
        """Send the head and the whole `body` and end the stream, if the protocol can now: True
        when sent, False when the stream is gone (as `_write_head`), None to take the usual
        way (head, queued body, `finish`), as here."""
        return None

    # response head
    def _send_head(self, status: str, headers: list[tuple[str, str]], length: int | None,
                   empty: bool, whole: bytes | None = None) -> bool:
        """Send the response head. With `whole`, the entire body (one bytes piece of `length`),
        the protocol may send the body with it and end the stream (`_write_whole`), when the
        head declares no other length; True when that is done with the response, sent or not."""
        code = int(status[:3])
        self.status = code
        self.responded_at = time.monotonic()
        out, declared = response_fields(headers, self.conn.extra_fields)
        self._no_body = self.method == "HEAD" or code in (204, 304)
        if declared is None and length is not None and not self._no_body:
            declared = length
            out.append((b"content-length", b"%d" % length))
        self._remaining = None if self._no_body else declared
        if whole is not None and declared == length and not self._no_body and self.trailers is None:
            sent = self._write_whole(code, out, whole)
            if sent is not None:
                if sent:
                    self.bytes_sent += length
                    self._remaining = 0
                    self._no_body = True
                    self._head_ended()
                return True
        end = self._no_body or (empty and self.trailers is None)  # trailers end the stream instead
        if not self._write_head(code, out, end):
            return False
        if end:
            self._no_body = True
            self._head_ended()
        return False

    # response interface
    def send_response(self, status: str, headers: list[tuple[str, str]],
                      body: bytes | Sequence[BodyPiece] = b"") -> None:
        if self.finished or self.aborted:
            return
        if type(body) is bytes:  # the common answer: one piece, its length at hand
            length = len(body)
            pieces = [body]
            whole = body if length else None
        else:
            pieces = [body] if isinstance(body, (bytearray, memoryview)) else list(body)
            length = body_length(pieces)
            whole = pieces[0] if length and len(pieces) == 1 and type(pieces[0]) is bytes else None
        if self._send_head(status, headers, length, length == 0, whole) or self._no_body or self.aborted:
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
        self._kick()

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
            if self._enqueue(piece) > self.high_water:
                self.conn.block(self)

    def abort(self, cancelled: bool = False) -> None:
        if not (self.finished or self.aborted):
            self.conn.abort_stream(self, cancelled)

    def push(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> bool:
        """Promise `GET path` (same origin only) and serve it on a stream of its own; see
        `Exchange.push`. Checked here on the caller's thread, promised on the loop thread in
        order with the response calls that follow, so the PUSH_PROMISE precedes the response
        that refers to the pushed resource."""
        conn = self.conn
        authority = self.header("host")
        if authority is None or self.finished or self.aborted or not self._may_push():
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
            self.call_soon_threadsafe(conn.push, self, block, target, fields)
        return True


# the connection's side
def dispatch(exchange: StreamExchange, log: logging.Logger) -> None:
    """Hand the request to its handler; a handler that raises gets a 500 (or a reset once its
    response started), this stream alone."""
    exchange.dispatched = True
    try:
        exchange.handler.handle(exchange)
    except Exception:
        log.exception("request handler failed: %s %s", exchange.method, exchange.target)
        if not exchange.response_started:
            exchange.send_response(status_line(500), error_headers(), error_body(500))
        else:
            exchange.abort()


def refuse_body(exchange: StreamExchange) -> None:
    """The request body went past the maximum upload size: the app reading it sees
    `BodyTooLarge`; the client gets a 413, or a reset once the response started."""
    exchange.refused = True
    exchange.body.fail(BodyTooLarge("request body larger than the maximum upload size"))
    if exchange.response_started:
        exchange.abort()
    else:
        exchange.dispatched = True
        exchange.send_response(status_line(413), error_headers(), error_body(413))


def take_body(exchange: StreamExchange, pause, resume, timeout: float, max_upload: int,
              on_continue) -> bool:
    """A request whose body is still coming: a handler that streams it reads it as it arrives
    (`pause`/`resume` hold back and give the stream's credit, `on_continue` sends a client
    waiting on `Expect: 100-continue` its go-ahead); one declared over `max_upload` is refused
    at once. False when it was."""
    if not exchange.handler.needs_full_body:
        exchange.body = StreamedBody(pause, resume, timeout, on_continue)
    length = exchange.header("content-length")
    if length is not None and length.isdigit() and int(length) > max_upload:
        refuse_body(exchange)
        return False
    return True


def block_stream(exchange: StreamExchange) -> None:
    """Make the stream's producer wait (its unsent data is over the high-water mark): it gets an
    Event of its own, so only this stream waits."""
    if exchange.writable is ALWAYS_WRITABLE:
        exchange.writable = threading.Event()
    else:
        exchange.writable.clear()
