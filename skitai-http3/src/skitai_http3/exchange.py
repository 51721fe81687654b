"""One HTTP/3 request stream as a Skitai `Exchange`, so every mounted handler (WSGI apps, static
files, plugin handlers) serves it unchanged.

The response methods turn into a HEADERS frame and a queued body (`skitai.outbox.Outbox`) that
the connection hands to aioquic as the stream's send buffer drains (`H3ServerConnection.pump`);
`writable` clears while the queued body is above the high-water mark, so an app streaming a large
body waits instead of filling memory. Trailers end the stream as a last HEADERS frame.
What every multiplexed protocol does alike (the head's fields, the Content-Length cut, push
checks) is the core's `skitai.streamexchange.StreamExchange`; this class adds the protocol's
wire.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from skitai.outbox import Outbox
from skitai.streamexchange import StreamExchange
from skitai.streamfields import trailer_fields

if TYPE_CHECKING:
    from .connection import H3ServerConnection


class H3Exchange(StreamExchange):
    protocol_name = "HTTP/3.0"
    __slots__ = ("last_output", "outbox", "handed", "head_sent")   # as StreamExchange's, see there

    def __init__(self, conn: "H3ServerConnection", stream_id: int, method: str, target: str,
                 headers: list[tuple[str, str]]) -> None:
        super().__init__(conn, stream_id, method, target, headers, "3.0", "https")
        self.last_output = self.last_input      # the stall checks' clocks
        self.outbox = Outbox()
        self.handed = 0             # body bytes given to aioquic so far
        self.head_sent = False

    @property
    def high_water(self) -> int:
        return self.conn.limits.high_water

    # StreamExchange's protocol specifics
    def _write_head(self, code: int, fields: list[tuple[bytes, bytes]], end: bool) -> bool:
        return self.conn.send_head(self, [(b":status", b"%d" % code), *fields], end)

    def _head_ended(self) -> None:
        self.conn.stream_done(self)

    def _enqueue(self, piece) -> int:
        self.outbox.add(piece)
        return self.outbox.pending

    def _kick(self) -> None:
        self.conn.schedule_pump()

    def _may_push(self) -> bool:
        return (self.stream_id % 4 == 0 and self.pushes < self.conn.limits.max_pushes_per_request
                and self.conn.may_push())

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

    def request_continue(self) -> None:
        """HTTP/3 clients do not wait for `100 Continue` (RFC 9114 4.1: interim responses are
        allowed, and a client that sent `Expect` gets one): sent once, from the loop thread."""
        if (self.header("expect") or "").lower() == "100-continue":
            self.call_soon_threadsafe(self.conn.send_continue, self)  # in order with the response
