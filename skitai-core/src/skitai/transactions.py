"""API transaction ids: which request of which chain of calls a request log line belongs to.

Every request has a global transaction id (gtxid), the same for every request a chain of calls
makes, and a local id (ltxid). A request from outside gets a new gtxid (`GTID-P<process>-R<n>`)
and the local id 1000. A corequest to another service (the gateway's `was.get` ...) sends both
in the headers `X-Gtxn-Id` and `X-Ltxn-Id`, the local id numbered `ltxid + n` for the request's
n-th call; the Skitai that receives it keeps the gtxid and takes the received local id plus 1000
as its own. So the first digit is the depth in the chain and the rest the sequence, as the
manual's "API Transaction ID" says: the edge is 1000, its calls are 2001 and 2002 where they
arrive, their calls 3002 and 3003.

Headers that are not well-formed ids (a client's guess, garbage) are ignored: the request then
starts a chain of its own.
"""
from __future__ import annotations

import itertools
import os
import re
import secrets
import threading

from .services import current

GTXID_HEADER = "x-gtxn-id"
LTXID_HEADER = "x-ltxn-id"
EDGE_LTXID = 1000
DEPTH_STEP = 1000  # what a hop adds to the local id it received
ENVIRON_KEY = "skitai.transaction"

_GTXID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LTXID = re.compile(r"[0-9]{1,15}")


class _GtxidSource:
    """New gtxids: a random part per process (drawn again in a forked worker, so workers never
    share one) and the process's request count."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tag = secrets.token_hex(4)
        self.numbers = itertools.count(1)  # next() is atomic: no lock


_source = _GtxidSource()
_first_call = threading.Lock()  # two threads' first calls of one request share one numbering
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_source.reset)


class Transaction:
    """The ids of one request, and the numbering of its calls (thread-safe)."""

    __slots__ = ("_gtxid", "_tag", "ltxid", "_calls")

    def __init__(self, gtxid: str | int, ltxid: int) -> None:
        self._gtxid = gtxid  # an int: this process's new chain number, spelled out when asked for
        self._tag = _source.tag  # the process's tag at numbering (a forked child draws its own)
        self.ltxid = ltxid
        self._calls: itertools.count | None = None  # made by the first call: most requests make none

    @property
    def gtxid(self) -> str:
        """Most requests never show their id (no calls made, the request log off or written
        later by its own thread), so a new chain's id is numbered at once but spelled out here."""
        gtxid = self._gtxid
        if type(gtxid) is int:
            gtxid = self._gtxid = f"GTID-P{self._tag}-R{gtxid}"
        return gtxid

    def __repr__(self) -> str:
        return f"<Transaction {self.gtxid} {self.ltxid}>"

    @classmethod
    def for_request(cls, headers: list[tuple[str, str]]) -> "Transaction":
        """The ids of a request with these (lower-case) header fields: those an upstream Skitai
        sent, one level deeper, or a new chain."""
        gtxid = ltxid = None
        for name, value in headers:
            if name == GTXID_HEADER and gtxid is None:
                gtxid = value.strip()
            elif name == LTXID_HEADER and ltxid is None:
                ltxid = value.strip()
        if gtxid is None or not _GTXID.fullmatch(gtxid):
            return cls(next(_source.numbers), EDGE_LTXID)
        if ltxid is None or not _LTXID.fullmatch(ltxid):
            return cls(gtxid, EDGE_LTXID)
        return cls(gtxid, int(ltxid) + DEPTH_STEP)

    def call_headers(self) -> list[tuple[str, str]]:
        """The header fields of this request's next call to another service."""
        calls = self._calls
        if calls is None:
            with _first_call:
                if self._calls is None:
                    self._calls = itertools.count(1)  # next() is atomic: calls from several threads stay distinct
                calls = self._calls
        return [("X-Gtxn-Id", self.gtxid), ("X-Ltxn-Id", str(self.ltxid + next(calls)))]


def current_transaction() -> Transaction | None:
    """The transaction of the request this thread serves (an app's thread, while `skitai.was`
    works), or None outside a request."""
    environ = getattr(current, "environ", None)
    return environ.get(ENVIRON_KEY) if environ is not None else None
