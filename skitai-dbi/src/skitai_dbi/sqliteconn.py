"""DB_SQLITE3: one SQLite connection with a thread of its own.

The `sqlite3` module blocks, so each connection gets a single thread that runs all its calls
in order (SQLite connections are not to be shared between threads at once); the loop awaits
them and never blocks. Connections use write-ahead logging (readers and a writer at the same
time) and wait up to `BUSY_TIMEOUT` seconds for a lock another connection or process holds
instead of failing at once with "database is locked". They are in autocommit mode, like the
PostgreSQL ones: a transaction is an explicit BEGIN ... COMMIT (see `skitai_dbi.transaction`).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from typing import Any

from skitai.backends import Member

from .backend import Backend
from .errors import DatabaseUnreachable
from .rows import Row, rows

BUSY_TIMEOUT = 10.0  # seconds


class SqliteConnection:
    def __init__(self, path: str) -> None:
        self.path = path
        self.raw: sqlite3.Connection | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="skitai-dbi-sqlite")

    @classmethod
    async def open(cls, member: Member) -> "SqliteConnection":
        connection = cls(member.path)
        try:
            await connection._call(connection._connect)
        except sqlite3.Error as error:  # a folder that does not exist, a file that is not a database
            connection.close()
            raise DatabaseUnreachable(f"{member.path}: {error}") from error
        except BaseException:
            connection.close()
            raise
        return connection

    def _connect(self) -> None:
        self.raw = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
        self.raw.execute("PRAGMA journal_mode=WAL")

    async def _call(self, function: Any, *args: Any) -> Any:
        return await asyncio.wrap_future(self._thread.submit(function, *args))

    @property
    def closed(self) -> bool:
        return self.raw is None

    async def execute(self, sql: str, params: Any = None) -> tuple[list[Row], int]:
        return await self._call(self._execute, sql, params)

    def _execute(self, sql: str, params: Any) -> tuple[list[Row], int]:
        cursor = self.raw.execute(sql, () if params is None else params)
        try:
            records = cursor.fetchall() if cursor.description is not None else []
            columns = [column[0] for column in cursor.description or ()]
            return rows(columns, records), cursor.rowcount
        finally:
            cursor.close()

    async def cancel(self) -> None:
        """Interrupt the running statement (`sqlite3.Connection.interrupt` may be called from
        any thread), then wait until the connection's thread is free again."""
        if self.raw is not None:
            self.raw.interrupt()
        await self._call(_nothing)

    def reusable(self) -> bool:
        return self.raw is not None and not self.raw.in_transaction

    def idle_and_sound(self) -> bool:
        return self.raw is not None

    def close(self) -> None:
        raw, self.raw = self.raw, None
        if raw is not None:
            self._thread.submit(raw.close)
        self._thread.shutdown(wait=False)


def _nothing() -> None:
    """A no-op to queue behind a connection's running call."""


def backend(pool_size: int) -> Backend:
    return Backend(SqliteConnection.open, pool_size)
