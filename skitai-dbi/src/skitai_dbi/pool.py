"""A bounded pool of connections to one database member, in one worker process.

Each worker has its own pools (connections never cross a fork): at most `size` connections
per member, callers beyond that wait their turn (the corequest's timeout bounds the wait). A
connection is checked before it is handed out (`idle_and_sound`): one the server ended (a
restart, `pg_terminate_backend`) is dropped and a new one opened, so a restarted server costs
no failed query. A connection that broke or was left inside a transaction is closed rather
than reused.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("skitai.dbi")


class Pool:
    """`await pool.acquire()` a connection, `pool.release(conn)` it; `open()` makes a new one.

    Connections have `idle_and_sound()` (may an idle one be handed out), `reusable()` (may a
    released one be kept) and `close()` (see `skitai_dbi.pgconn`, `skitai_dbi.sqliteconn`).
    """

    def __init__(self, open: Callable[[], Awaitable[Any]], size: int) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one connection, not {size}")
        self.open = open
        self.size = size
        self.idle: list[Any] = []
        self.opened = 0                       # connections alive, idle or in use
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    @property
    def in_use(self) -> int:
        return self.opened - len(self.idle)

    async def acquire(self) -> Any:
        await self._slots.acquire()
        try:
            while self.idle:
                connection = self.idle.pop()  # the most recently used first: the others may age out
                if connection.idle_and_sound():
                    return connection
                self._discard(connection)
            connection = await self.open()
        except BaseException:
            self._slots.release()
            raise
        self.opened += 1
        return connection

    def release(self, connection: Any) -> None:
        """Take a connection back: kept when it can serve again, else closed."""
        if not self._closed and connection.reusable():
            self.idle.append(connection)
        else:
            self._discard(connection)
        self._slots.release()

    def _discard(self, connection: Any) -> None:
        self.opened -= 1
        try:
            connection.close()
        except Exception:
            log.exception("closing a database connection failed")

    def close(self) -> None:
        """The worker stops: close the idle connections; those in use close on release."""
        self._closed = True
        while self.idle:
            self._discard(self.idle.pop())
