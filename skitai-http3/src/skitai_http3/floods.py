"""Flood budgets on what a peer sends in STREAM frames, where aioquic bounds nothing.

aioquic bounds some things itself: the number of concurrent streams (MAX_STREAMS), the
connection IDs a peer may give (active_connection_id_limit), out-of-order CRYPTO data, a second
SETTINGS frame or control stream (connection errors). What costs the server without bound, each
within flow control, is charged here to a `Budget` (a burst, then a rate), and overspending ends
the connection with H3_EXCESSIVE_LOAD:

* tiny STREAM frames: each costs a frame's handling (and, in order, an HTTP/3 parse and an
  event), and out of order each leaves a fragment in the stream's receive buffer for aioquic to
  merge; frames under `small_frame` bytes that do not end their stream cost from `small_frames`,
  and each frame of `FULL_FRAME` bytes or more earns one back (a client's packing leaves small
  tails among full frames now and then; a flood of only small frames earns nothing);
* unidirectional streams: HTTP/3 needs three from a client (control, QPACK encoder and decoder);
  every stream the peer opens beyond them (unknown types must be accepted and ignored) costs
  from `uni_streams`;
* bytes on unidirectional streams: QPACK encoder instructions, control frames, the payload of
  ignored streams and frames. They cost from `uni_bytes`, and each request the peer makes earns
  back `uni_bytes_per_request` (room for the inserts and PRIORITY_UPDATEs a request brings);
* RETIRE_CONNECTION_ID frames: aioquic answers each with a new connection ID (a NEW_CONNECTION_ID
  frame ten times the size of the one that asked), so they cost from `retired_ids`.

PING frames and ACKs cost an ACK or less each, no more than the datagrams carrying them.
"""
from __future__ import annotations

import time

from skitai.budget import Budget

from .frames import before_frames, observe_stream_frames
from .settings import Limits

HTTP3_UNI_STREAMS = 3
RETIRE_CONNECTION_ID = 0x19
FULL_FRAME = 1000   # bytes: a STREAM frame filling most of a datagram


class PeerFloods:
    """The budgets of one connection; `exceeded` names the first one overspent (checked by the
    connection after each datagram)."""

    def __init__(self, quic, limits: Limits) -> None:
        self.small_frame = limits.small_frame
        self.small_frames = Budget(limits.small_frames_burst, limits.small_frames_rate)
        self.uni_streams = Budget(limits.uni_streams_burst + HTTP3_UNI_STREAMS, limits.uni_streams_rate)
        self.uni_bytes = Budget(limits.uni_bytes_burst, limits.uni_bytes_rate)
        self.uni_bytes_per_request = limits.uni_bytes_per_request
        self.next_uni = 2                      # client-initiated unidirectional: 2, 6, 10, ...
        self.exceeded: str | None = None
        self.retired_ids = Budget(limits.retired_ids_burst, limits.retired_ids_rate)
        observe_stream_frames(quic, self._observe)
        before_frames(quic, (RETIRE_CONNECTION_ID,), self._retired)

    def _retired(self, context, frame_type: int, buf) -> None:
        if not self.retired_ids.spend(time.monotonic()):
            self.exceeded = "RETIRE_CONNECTION_ID flood"

    def _observe(self, epoch, stream_id: int, length: int, fin: bool) -> None:
        now = time.monotonic()
        if stream_id & 2:
            if stream_id >= self.next_uni:  # opening stream N opens those below it too
                opened = (stream_id - self.next_uni) // 4 + 1
                self.next_uni = stream_id + 4
                if not self.uni_streams.spend(now, opened):
                    self.exceeded = "unidirectional streams flood"
            if not self.uni_bytes.spend(now, length):
                self.exceeded = "unidirectional stream data flood (QPACK encoder or control stream)"
        elif length < self.small_frame:
            if not fin and not self.small_frames.spend(now):
                self.exceeded = "tiny STREAM frames flood"
        elif length >= FULL_FRAME:
            self.small_frames.refund(1)

    def request_made(self) -> None:
        self.uni_bytes.refund(self.uni_bytes_per_request)
