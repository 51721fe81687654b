"""The request log: one line per request, fields in the order of the spec's "Log Format".

date time client host method uri version request-bytes status response-bytes gtxid ltxid
"user" bearer "referer" "user-agent" x-forwarded-for worker connections handle-ms transfer-ms

Records are kept as tuples on the hot path; the loop hands them to a writer thread, which
formats and writes them, every BATCH records and once a second (and at a stop). Formatting is
some 35,000 instructions a record, which the loop would otherwise spend not serving (goal 6 of
issue 20).

Memory stays bounded whatever the request rate (goal 7): the loop holds at most BATCH records
and the writer's backlog at most BACKLOG batches (a second's records at 25,000 requests a second,
held whole, took a hello worker from 28 to 60 MB). When the writer falls that far behind, the
loop waits for it, up to BACKLOG_WAIT, rather than drop lines: a request log that loses lines
under load is no log. A writer stuck longer than that (a paused terminal) does not stop the
server: the records stay with the loop, and the next hand-over tries again.
"""
from __future__ import annotations

import base64
import logging
import queue
import sys
import threading
import time
from typing import TextIO

from .transactions import Transaction


def _quoted(value: str | None) -> str:
    return f'"{value}"' if value else "-"


def _auth_fields(authorization: str | None) -> tuple[str, str]:
    if not authorization:
        return "-", "-"
    scheme, _, credentials = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            user = base64.b64decode(credentials.strip()).decode("utf-8", "replace").partition(":")[0]
        except (ValueError, UnicodeError):
            return "-", "-"
        return _quoted(user), "-"
    if scheme == "bearer":
        return "-", credentials.strip() or "-"
    return "-", "-"


_LOGGED_FIELDS = frozenset(("host", "authorization", "referer", "user-agent", "x-forwarded-for"))
BATCH = 512  # records the loop holds before it hands them over (under 1 MB; also once a second)
BACKLOG = 4  # batches handed over and not yet written (the one being written included), at most
BACKLOG_WAIT = 1.0  # seconds the loop waits, at most, for room in a full backlog
CLOSE_TIMEOUT = 10.0  # seconds the stop waits for the writer to write what is left


class AccessLog:
    def __init__(self, stream: TextIO | None = None, worker_id: str = "M") -> None:
        self.stream = stream or sys.stdout
        self.worker_id = worker_id
        self._records: list[tuple] = []
        self._batches: queue.SimpleQueue[list[tuple] | None] = queue.SimpleQueue()
        self._backlog = threading.BoundedSemaphore(BACKLOG)  # released as each batch is written
        self._writer: threading.Thread | None = None  # started by the first hand-over: after a fork
        self._stamp_second, self._stamp = -1, ""  # the writer's last date and time, formatted

    def record(self, client: tuple, method: str, uri: str, version: str, headers: list,
               received: int, status: int, sent: int, connections: int,
               handle_seconds: float, transfer_seconds: float, transaction: Transaction | None = None) -> None:
        """One request; `transaction` its ids (None, logged `- -`, for a request that never
        parsed). The BATCH-th record since the last hand-over hands them over (`==`, not `>=`:
        records kept back by a stuck writer wait for the timer, not one try per request)."""
        records = self._records
        records.append((time.time(), client, method, uri, version, headers, received, status,
                        sent, connections, handle_seconds, transfer_seconds, transaction))
        if len(records) == BATCH:
            self.flush()

    def flush(self) -> None:
        """Hand the records so far to the writer thread (on the loop: once a second, and every
        BATCH records); waits only while the writer is BACKLOG batches behind."""
        if self._records:
            self._hand_over(BACKLOG_WAIT)

    def close(self) -> None:
        """Hand over what is left and wait (bounded) until the writer has written everything:
        on a stop."""
        deadline = time.monotonic() + CLOSE_TIMEOUT
        if self._records:
            self._hand_over(CLOSE_TIMEOUT)
        writer, self._writer = self._writer, None
        if writer is None:
            return
        self._batches.put(None)
        writer.join(max(0.0, deadline - time.monotonic()))
        if writer.is_alive() or self._records:
            logging.getLogger("skitai.server").warning(
                "the request log's writer did not finish within %s s: its last lines are lost", CLOSE_TIMEOUT)

    def _hand_over(self, wait: float) -> None:
        """Put the records in the writer's backlog, waiting up to `wait` seconds for room; if
        there is none by then they stay here for the next hand-over."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_batches, name="skitai-accesslog",
                                            daemon=True)
            self._writer.start()
        if self._backlog.acquire(timeout=wait):
            self._batches.put(self._records)
            self._records = []

    def _write_batches(self) -> None:
        while True:
            records = self._batches.get()
            if records is None:
                return
            try:
                self._write(records)
            except Exception:  # noqa: BLE001 -- a bad record must not end the request log
                logging.getLogger("skitai.server").exception("writing the request log failed")
            finally:
                self._backlog.release()

    def _write(self, records: list[tuple]) -> None:
        lines = [self._format(record) for record in records]
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed console must not take the server down

    def _format(self, record: tuple) -> str:
        (when, client, method, uri, version, headers, received, status, sent, connections,
         handle_seconds, transfer_seconds, transaction) = record
        fields = {}
        for name, value in headers:
            if name in _LOGGED_FIELDS:
                fields.setdefault(name, value)
        user, bearer = _auth_fields(fields.get("authorization"))
        second = int(when)
        if second != self._stamp_second:  # a batch's records mostly share their second
            self._stamp = time.strftime("%Y.%m.%d %H:%M:%S", time.localtime(second))
            self._stamp_second = second
        stamp = self._stamp
        ids = f"{transaction.gtxid} {transaction.ltxid}" if transaction is not None else "- -"
        return (f"{stamp} {client[0] if client else '-'} {fields.get('host') or '-'} "
                f"{method} {uri} HTTP/{version} {received} {status} {sent} {ids} {user} {bearer} "
                f"{_quoted(fields.get('referer'))} {_quoted(fields.get('user-agent'))} "
                f"{fields.get('x-forwarded-for') or '-'} {self.worker_id} {connections} "
                f"{handle_seconds * 1000:.0f}ms {transfer_seconds * 1000:.0f}ms")
