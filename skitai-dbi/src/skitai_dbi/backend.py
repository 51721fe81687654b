"""The connections of one alias kind in one worker: a pool per member, statements run on a
connection taken from it, and what happens to a statement whose corequest gave up.

Works with any connection class that has the methods `Pool` names plus `execute(sql, params)`
and `cancel()` coroutines (`PgConnection`, `SqliteConnection`).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from skitai.backends import Member

from .errors import DatabaseUnreachable
from .pool import Pool
from .rows import Row

log = logging.getLogger("skitai.dbi")


class LeaseLost(RuntimeError):
    """A statement for a connection that went back to its pool."""


class Lease:
    """A connection taken from its pool, until `release()`."""

    def __init__(self, pool: Pool, connection: Any, member: Member) -> None:
        self.pool = pool
        self.connection = connection
        self.member = member
        self.released = False
        self.cancelled = False

    async def execute(self, sql: str, params: Any = None) -> list[Row]:
        """Run a statement; when the corequest is cancelled (it timed out, or the worker stops)
        the statement is cancelled on the server too, in the background, before the connection
        goes back, so it never runs on unseen. A lease whose statement was cancelled takes no
        other (a transaction's next statement would land in the middle of the cancel)."""
        if self.released or self.cancelled:
            raise LeaseLost(f"the connection to {self.member} went back to its pool (put back, or its "
                            "statement was cancelled): start a new transaction")
        try:
            rows, _ = await self.connection.execute(sql, params)
        except asyncio.CancelledError:
            self.cancelled = True
            _in_background(self._cancel())
            raise
        return rows

    async def _cancel(self) -> None:
        try:
            await self.connection.cancel()
        except Exception:
            log.warning("cancelling a statement on %s failed; its connection is closed", self.member, exc_info=True)
            self.connection.close()
        self.release()

    def release_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """`release()` from another thread (the pools belong to the loop's thread)."""
        loop.call_soon_threadsafe(self.release)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.pool.release(self.connection)


class Backend:
    """`connect(member)` opens a connection; `size` bounds each member's pool."""

    def __init__(self, connect: Callable[[Member], Awaitable[Any]], size: int) -> None:
        self.connect = connect
        self.size = size
        self.pools: dict[Member, Pool] = {}

    def pool(self, member: Member) -> Pool:
        pool = self.pools.get(member)
        if pool is None:
            pool = self.pools[member] = Pool(lambda: self.connect(member), self.size)
        return pool

    async def lease(self, members: Sequence[Member]) -> Lease:
        """A connection to the first of `members` that can be reached: the next ones are the
        fail-over when a member's server is down."""
        failure: DatabaseUnreachable | None = None
        for member in members:
            pool = self.pool(member)
            try:
                connection = await pool.acquire()
            except DatabaseUnreachable as error:
                log.warning("database member %s unreachable: %s", member, error)
                failure = error
                continue
            return Lease(pool, connection, member)
        assert failure is not None, "no member to lease from"
        raise failure

    async def execute(self, members: Sequence[Member], sql: str, params: Any = None) -> list[Row]:
        """One statement on a connection of its own, returned to the pool after it (or when
        the statement is cancelled, after the cancel)."""
        lease = await self.lease(members)
        try:
            rows = await lease.execute(sql, params)
        except asyncio.CancelledError:
            raise  # the lease is released once the statement is cancelled
        except BaseException:
            lease.release()
            raise
        lease.release()
        return rows

    async def aclose(self) -> None:
        """The server stops: the idle connections close now, those in use when released."""
        for pool in self.pools.values():
            pool.close()


_background: set[asyncio.Task] = set()


def _in_background(coroutine: Awaitable) -> None:
    """Run `coroutine` to its end on the loop, kept referenced (asyncio holds tasks weakly)."""
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
