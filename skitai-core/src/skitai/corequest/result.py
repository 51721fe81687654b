"""What a finished corequest gives back: a `Result`, whatever kind of operation it was.

Every driver (HTTP calls, database queries, threads, processes, subprocesses, a plugin's own)
maps its outcome onto the same few fields, so an app checks `status` and `status_code` the same
way for all of them, and `fetch()`/`one()`/`commit()` turn a failure into the matching HTTP error.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import HTTPError

# how far the operation got (the spec's names and meanings)
STA_UNSENT = 0    # never started: the worker is stopping, or the operation could not be scheduled
STA_REQFAIL = 1   # started, but the operation itself failed (bad arguments, an exception in it)
STA_TIMEOUT = 2   # no outcome within the timeout
STA_NETERR = 3    # the peer could not be reached or the connection broke
STA_NORMAL = 4    # the operation completed; `status_code` says how it went

STATUS_NAMES = {STA_UNSENT: "STA_UNSENT", STA_REQFAIL: "STA_REQFAIL", STA_TIMEOUT: "STA_TIMEOUT",
                STA_NETERR: "STA_NETERR", STA_NORMAL: "STA_NORMAL"}

# the HTTP answer each non-normal status stands for when `fetch()` raises it
FAILURE_CODES = {STA_UNSENT: (503, "Service Unavailable"), STA_REQFAIL: (500, "Internal Server Error"),
                 STA_TIMEOUT: (504, "Gateway Timeout"), STA_NETERR: (502, "Bad Gateway")}


class Result:
    """The outcome of one corequest.

    `status` is one of the STA_* constants; `status_code`/`reason` are HTTP-like (200 "OK" for a
    completed thread or query, the upstream's own for an HTTP call, the codes of `FAILURE_CODES`
    for the other statuses); `data` is the payload; `expt` the exception behind a failure, if
    any. `cached` is True for a result served from the result cache.
    """

    __slots__ = ("status", "status_code", "reason", "data", "headers", "expt", "cached")

    def __init__(self, status: int = STA_NORMAL, status_code: int = 200, reason: str = "OK",
                 data: Any = None, headers: Sequence[tuple[str, str]] = (), expt: BaseException | None = None,
                 cached: bool = False) -> None:
        self.status = status
        self.status_code = status_code
        self.reason = reason
        self.data = data
        self.headers = list(headers)
        self.expt = expt
        self.cached = cached

    @classmethod
    def failure(cls, status: int, expt: BaseException | None = None, reason: str | None = None) -> "Result":
        code, default_reason = FAILURE_CODES[status]
        return cls(status, code, reason or default_reason, None, (), expt)

    def __repr__(self) -> str:
        return (f"<Result {STATUS_NAMES.get(self.status, self.status)} {self.status_code} {self.reason}"
                f"{' cached' if self.cached else ''}>")

    def copy(self, **changes: Any) -> "Result":
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return Result(**values)

    @property
    def ok(self) -> bool:
        return self.status == STA_NORMAL and self.status_code < 300

    def get_header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return default

    def reraise(self) -> None:
        """Raise what this result stands for, unless it is a success.

        The operation's own exception when it failed by one (a thread's `ValueError` stays a
        `ValueError`, an `HTTPError` stays itself); else an `HTTPError` with `status_code`:
        504 for a timeout, 502 for a network error, 503 for an unsent corequest, the answer's
        own code for a completed but unsuccessful one.
        """
        if self.ok:
            return
        if self.expt is not None and self.status in (STA_REQFAIL, STA_NORMAL):
            raise self.expt
        raise HTTPError(f"{self.status_code} {self.reason}") from self.expt

    def fetch(self) -> Any:
        """The data, or raise (see `reraise`)."""
        self.reraise()
        return self.data

    def one(self) -> Any:
        """The single record of the data, else HTTP 410 (no record, or more than one)."""
        data = self.fetch()
        if isinstance(data, (str, bytes, bytearray)) or not isinstance(data, Sequence):
            raise HTTPError(410, f"one() expects a sequence of one record, got {type(data).__name__}")
        if len(data) != 1:
            raise HTTPError(410, f"one() expects exactly one record, got {len(data)}")
        return data[0]

    def commit(self) -> None:
        """Raise if the operation failed; nothing otherwise."""
        self.reraise()
