"""One psycopg2 asynchronous connection driven by the worker's event loop.

psycopg2's asynchronous mode never blocks: `conn.poll()` advances the protocol and says
whether it waits to read or to write the socket, which the loop watches with `add_reader` /
`add_writer` (the approach of aiopg). Asynchronous connections are always in autocommit mode;
a transaction is an explicit `BEGIN` ... `COMMIT` (see `skitai_dbi.transaction`).
"""
from __future__ import annotations

import asyncio
import select
from typing import Any

import psycopg2
from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE, TRANSACTION_STATUS_IDLE

from .errors import DatabaseUnreachable
from .rows import Row, rows


class PgConnection:
    """`await PgConnection.open(dsn)`, then `await conn.execute(sql, params)` one at a time."""

    def __init__(self, raw: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.raw = raw
        self.loop = loop

    @classmethod
    async def open(cls, dsn: str, label: str = "PostgreSQL") -> "PgConnection":
        """Connect; a server that cannot be reached or refuses the session raises
        `DatabaseUnreachable` (a `ConnectionError`: the corequest's STA_NETERR, and another
        member's turn under load-balancing), its message starting with `label`."""
        loop = asyncio.get_running_loop()
        connection = None
        try:
            connection = cls(psycopg2.connect(dsn, async_=1), loop)
            await connection._ready()
        except BaseException as error:
            if connection is not None:
                connection.close()
            if isinstance(error, psycopg2.OperationalError):
                raise DatabaseUnreachable(f"{label}: {' '.join(str(error).split())}") from error
            raise
        return connection

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)

    @property
    def backend_pid(self) -> int:
        return self.raw.get_backend_pid()

    async def _ready(self) -> None:
        """Poll until psycopg2 has nothing more to send or receive; raises its errors."""
        fd = self.raw.fileno()
        while True:
            state = self.raw.poll()
            if state == POLL_OK:
                return
            waiter = self.loop.create_future()
            if state == POLL_READ:
                watch, unwatch = self.loop.add_reader, self.loop.remove_reader
            elif state == POLL_WRITE:
                watch, unwatch = self.loop.add_writer, self.loop.remove_writer
            else:  # POLL_ERROR is raised by poll() itself; anything else is a psycopg2 change
                raise psycopg2.OperationalError(f"unexpected poll state {state}")
            watch(fd, _wake, waiter)
            try:
                await waiter
            finally:
                unwatch(fd)

    async def execute(self, sql: str, params: Any = None) -> tuple[list[Row], int]:
        """Run one statement with its parameters bound by psycopg2: (rows, rowcount). A
        statement that returns no rows answers an empty list."""
        # no `with`: closing a cursor whose statement is still running (a cancelled
        # corequest) raises; the caller cancels the statement instead (see cancel())
        cursor = self.raw.cursor()
        cursor.execute(sql, params)
        await self._ready()
        records = cursor.fetchall() if cursor.description is not None else []
        columns = [column.name for column in cursor.description or ()]
        cursor.close()
        return rows(columns, records), cursor.rowcount

    def reusable(self) -> bool:
        """Open and outside any transaction (a transaction ends with COMMIT or ROLLBACK before
        its connection returns; one that did not is not trusted again)."""
        return not self.closed and self.raw.get_transaction_status() == TRANSACTION_STATUS_IDLE

    def idle_and_sound(self) -> bool:
        """Whether an idle connection can be handed out: open, and nothing waiting on its
        socket (a server that ended the session, by a restart or `pg_terminate_backend`, sent
        its farewell there and closed; a sound idle session has nothing to say)."""
        if self.closed:
            return False
        try:
            readable, _, _ = select.select([self.raw.fileno()], [], [], 0)
        except (OSError, ValueError, psycopg2.Error):
            return False
        return not readable

    async def cancel(self) -> None:
        """Stop the statement running on this connection: psycopg2 sends the server a cancel
        request over a connection of its own (blocking, so in a thread), then this one is
        drained of the statement's error, ready for the next use."""
        await self.loop.run_in_executor(None, self.raw.cancel)
        try:
            await self._ready()
        except psycopg2.extensions.QueryCanceledError:
            pass

    def close(self) -> None:
        if not self.raw.closed:
            self.raw.close()


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)
