"""The request log: one line per request, fields in the order of the spec's "Log Format".

date time client host method uri version request-bytes status response-bytes gtxid ltxid
"user" bearer "referer" "user-agent" x-forwarded-for worker connections handle-ms transfer-ms

Records are kept as tuples on the hot path and formatted when the batch is flushed (once a
second and at shutdown), so logging costs the loop almost nothing per request.
"""
from __future__ import annotations

import base64
import sys
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


class AccessLog:
    def __init__(self, stream: TextIO | None = None, worker_id: str = "M") -> None:
        self.stream = stream or sys.stdout
        self.worker_id = worker_id
        self._records: list[tuple] = []

    def record(self, client: tuple, method: str, uri: str, version: str, headers: list,
               received: int, status: int, sent: int, connections: int,
               handle_seconds: float, transfer_seconds: float, transaction: Transaction | None = None) -> None:
        """One request; `transaction` its ids (None, logged `- -`, for a request that never
        parsed)."""
        self._records.append((time.time(), client, method, uri, version, headers, received, status,
                              sent, connections, handle_seconds, transfer_seconds, transaction))

    def flush(self) -> None:
        if not self._records:
            return
        records, self._records = self._records, []
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
