"""0-RTT (`skitai.enable_http3_early_data`): the session tickets a worker issues, and which
request streams carried early data.

Early data can be captured and replayed by an attacker, so two rules hold:

* a ticket resumes one connection only: `TicketStore.pop` removes it, so a replayed 0-RTT
  flight finds no ticket, makes a full handshake and its early data is discarded by TLS. The
  store is per worker (tickets carry resumption secrets, kept out of shared memory and files):
  a resuming client whose new connection is steered to another worker (`byte % workers` of
  the connection ID it picks) makes a full handshake instead, so with N workers about 1 in N
  resumptions use 0-RTT; single use holds across workers since a ticket lives in one only.
* a request any part of which arrived in 0-RTT is served only for a safe method; others are
  answered 425 Too Early (RFC 8470 5.2) by the connection, the client retries after the
  handshake. `mark_early_streams` records those streams from the epoch of each STREAM frame
  (`frames`).
"""
from __future__ import annotations

from collections import OrderedDict

from aioquic.tls import Epoch, SessionTicket

from .frames import observe_stream_frames

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))   # RFC 9110 9.2.1
MAX_TICKETS = 10000    # per worker: the oldest are forgotten first


class TicketStore:
    """aioquic's session ticket handler (`add`) and fetcher (`pop`) for one worker."""

    def __init__(self, capacity: int = MAX_TICKETS) -> None:
        self.capacity = capacity
        self.tickets: OrderedDict[bytes, SessionTicket] = OrderedDict()

    def add(self, ticket: SessionTicket) -> None:
        self.tickets[ticket.ticket] = ticket
        while len(self.tickets) > self.capacity:
            self.tickets.popitem(last=False)

    def pop(self, label: bytes) -> SessionTicket | None:
        ticket = self.tickets.pop(label, None)
        return ticket if ticket is not None and ticket.is_valid else None


def mark_early_streams(quic, early: set[int]) -> None:
    """Add to `early` the id of every stream a STREAM frame arrives for in a 0-RTT packet."""

    def mark(epoch, stream_id: int, length: int, fin: bool) -> None:
        if epoch is Epoch.ZERO_RTT:
            early.add(stream_id)
    observe_stream_frames(quic, mark)
