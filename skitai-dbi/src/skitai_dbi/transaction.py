"""`was.transaction`: one connection held for a sequence of statements, DB-API style.

    with was.transaction("@mypg") as tx:
        tx.execute("INSERT ...")
        tx.execute("SELECT ...")
        rows = tx.fetch()
        tx.commit()

The app's thread waits for each statement (with the transaction's timeout); the statements
run on the worker's loop like every corequest. The first statement after the start, a commit
or a rollback opens a transaction (`BEGIN`). The connection goes back to its pool when the
`with` block ends (`auto_putback=True`, the default), at `putback()`, or at the latest when the
request ends: a transaction still open then is rolled back, with a warning in the log, so a
forgotten commit never exhausts the pool. Transactions are never cached.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

from skitai.services import at_request_end

from .backend import Backend, Lease, LeaseLost
from .driver import Database, by_weight
from .rows import Row
from .sqlphile_builder import SQLPhileBuilder

log = logging.getLogger("skitai.dbi")


class Transaction(SQLPhileBuilder):
    """Statements on one connection; SQLPhile's builder works here too
    (`tx.delete("posts").filter(id=7).execute()`)."""

    def __init__(self, driver: Database, alias: str, auto_putback: bool = True, timeout: float | None = None) -> None:
        self.driver = driver
        self.alias = driver.alias(alias)
        self.auto_putback = auto_putback
        self.timeout = timeout
        self.pending = False              # BEGIN was sent, no COMMIT/ROLLBACK yet
        self._rows: list[Row] = []
        self._position = 0
        # set on the loop thread only: a connection taken after the app stopped waiting for it
        # (a timeout) is given back, whichever of the two comes first
        self._taken: Lease | None = None
        self._abandoned = False
        backend = driver.backend(self.alias)
        if not isinstance(backend, Backend):
            raise TypeError(f"{self.alias.name} is a {self.alias.kind} alias: transactions are for SQL databases")
        self._lease: Lease | None = None
        at_request_end(self._request_ended)  # first: outside a request this raises, holding nothing
        try:
            self._lease = self._run(functools.partial(self._take, backend))
        except BaseException:
            driver.engine.loop.call_soon_threadsafe(self._abandon)
            raise

    def __repr__(self) -> str:
        state = "closed" if self._lease is None else "open" if self.pending else "idle"
        return f"<Transaction {self.alias.name} {state}>"

    async def _take(self, backend: Backend) -> Lease:
        lease = await backend.lease(by_weight(self.alias.members))
        self._taken = lease
        if self._abandoned:
            lease.release()
        return lease

    def _abandon(self) -> None:
        self._abandoned = True
        if self._taken is not None:
            self._taken.release()

    def _run(self, factory: Any) -> Any:
        return self.driver.start(factory, None, use_cache=False, timeout=self.timeout).fetch()

    def _statement(self, sql: str, params: Any = None) -> list[Row]:
        lease = self._lease
        if lease is None:
            raise LeaseLost(f"the transaction on {self.alias.name} was put back: start a new one")
        return self._run(functools.partial(lease.execute, sql, params))

    # DB-API
    def execute(self, sql: str, params: Any = None) -> "Transaction":
        """Run `sql` (parameters bound by the driver) inside the transaction; raises as
        `fetch()` of a corequest does (409 on a unique violation ...)."""
        if not self.pending:
            self._statement("BEGIN")
            self.pending = True
        self._rows, self._position = self._statement(sql, params), 0
        return self

    def fetch(self) -> list[Row]:
        """The rows of the last statement not fetched yet (the manual's `fetch()`, as `fetchall()`)."""
        rows, self._position = self._rows[self._position:], len(self._rows)
        return rows

    fetchall = fetch

    def fetchone(self) -> Row | None:
        if self._position >= len(self._rows):
            return None
        self._position += 1
        return self._rows[self._position - 1]

    def fetchmany(self, size: int = 1) -> list[Row]:
        rows = self._rows[self._position:self._position + size]
        self._position += len(rows)
        return rows

    def commit(self) -> None:
        if self.pending:
            self.pending = False
            self._statement("COMMIT")

    def rollback(self) -> None:
        if self.pending:
            self.pending = False
            self._statement("ROLLBACK")

    # giving the connection back
    def putback(self) -> None:
        """Return the connection to its pool; an open transaction is rolled back first."""
        lease, self._lease = self._lease, None
        if lease is None or lease.released or lease.cancelled:  # a cancelled one goes back by itself
            return
        try:
            if self.pending:
                log.warning("a transaction on %s was neither committed nor rolled back: rolled back",
                            self.alias.name)
                self.pending = False
                self._run(functools.partial(lease.execute, "ROLLBACK"))
        finally:
            lease.release_soon(self.driver.engine.loop)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is not None and self.pending:
            self.pending = False  # an error in the block: undo without a warning
            try:
                self._statement("ROLLBACK")
            except Exception:  # the block's own exception is the one to see
                log.warning("rolling back the transaction on %s failed", self.alias.name, exc_info=True)
        if self.auto_putback:
            self.putback()

    def _request_ended(self) -> None:
        if self._lease is not None:
            self.putback()
