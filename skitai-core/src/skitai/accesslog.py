"""The request log: one line per request, fields in the order of the spec's "Log Format".

date time client host method uri version request-bytes status response-bytes gtxid ltxid
"user" bearer "referer" "user-agent" x-forwarded-for worker connections handle-ms transfer-ms

Records are kept as tuples on the hot path; once a second (and at shutdown) the loop hands the
batch to a writer thread, which formats and writes it. Formatting a busy second's batch takes
tens of milliseconds (25,000 records ~70 ms), which the loop would otherwise spend not serving;
the writer holds the GIL only while it formats, in slices the interpreter switches between.
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


CLOSE_TIMEOUT = 10.0  # seconds the stop waits for the writer to write what is left


class AccessLog:
    def __init__(self, stream: TextIO | None = None, worker_id: str = "M") -> None:
        self.stream = stream or sys.stdout
        self.worker_id = worker_id
        self._records: list[tuple] = []
        self._batches: queue.SimpleQueue[list[tuple] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None  # started by the first flush: after a fork

    def record(self, client: tuple, method: str, uri: str, version: str, headers: list,
               received: int, status: int, sent: int, connections: int,
               handle_seconds: float, transfer_seconds: float, transaction: Transaction | None = None) -> None:
        """One request; `transaction` its ids (None, logged `- -`, for a request that never
        parsed)."""
        self._records.append((time.time(), client, method, uri, version, headers, received, status,
                              sent, connections, handle_seconds, transfer_seconds, transaction))

    def flush(self) -> None:
        """Hand the records so far to the writer thread (called on the loop: costs a swap)."""
        if not self._records:
            return
        records, self._records = self._records, []
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_batches, name="skitai-accesslog",
                                            daemon=True)
            self._writer.start()
        self._batches.put(records)

    def close(self) -> None:
        """Flush, and wait (bounded) until the writer has written everything: on a stop."""
        self.flush()
        writer, self._writer = self._writer, None
        if writer is not None:
            self._batches.put(None)
            writer.join(CLOSE_TIMEOUT)

    def _write_batches(self) -> None:
        while True:
            records = self._batches.get()
            if records is None:
                return
            try:
                self._write(records)
            except Exception:  # noqa: BLE001 -- a bad record must not end the request log
                logging.getLogger("skitai.server").exception("writing the request log failed")

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
            if name in ("host", "authorization", "referer", "user-agent", "x-forwarded-for"):
                fields.setdefault(name, value)
        user, bearer = _auth_fields(fields.get("authorization"))
        stamp = time.strftime("%Y.%m.%d %H:%M:%S", time.localtime(when))
        ids = f"{transaction.gtxid} {transaction.ltxid}" if transaction is not None else "- -"
        return (f"{stamp} {client[0] if client else '-'} {fields.get('host') or '-'} "
                f"{method} {uri} HTTP/{version} {received} {status} {sent} {ids} {user} {bearer} "
                f"{_quoted(fields.get('referer'))} {_quoted(fields.get('user-agent'))} "
                f"{fields.get('x-forwarded-for') or '-'} {self.worker_id} {connections} "
                f"{handle_seconds * 1000:.0f}ms {transfer_seconds * 1000:.0f}ms")
