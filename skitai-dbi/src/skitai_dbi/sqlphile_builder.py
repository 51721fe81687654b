"""SQLPhile's query builder on `was.db` and `was.transaction` (the extra `skitai-dbi[sqlphile]`).

    with was.db("@mydb") as db:
        rows = (db.get("a.id, b.name").select("users a, profiles b")
                .filter(b__name__contains=name).order_by("-a.id")[:limit]
                .execute().fetch())

`get`, `select`, `insert`, `update`, `delete` and `with_` start a `sqlphile` composer bound to the
session (or transaction): its `execute()` runs the SQL it built through the session's own
`execute()`, so it answers a Task (a transaction: the transaction) like a hand-written statement.
SQLPhile writes the values it is given into the SQL itself, quoted and escaped by its own rules
for the database's dialect; they are not bound by the driver as `execute(sql, params)` binds them.
"""
from __future__ import annotations

import functools
from typing import Any

from skitai.backends import DB_PGSQL

EXTRA_MISSING = 'the SQLPhile query builder needs the sqlphile package: pip install "skitai-dbi[sqlphile]"'


def composer(connection: Any, kind: str) -> Any:
    """A new composer for `connection` (what has `execute(sql)`), in the dialect of alias kind
    `kind` (DB_PGSQL or DB_SQLITE3)."""
    sqlphile, composer_class = _sqlphile()
    return composer_class(None, sqlphile.DB_PGSQL if kind == DB_PGSQL else sqlphile.DB_SQLITE3, connection)


@functools.lru_cache(maxsize=1)
def _sqlphile() -> tuple[Any, type]:
    try:
        import sqlphile
        from sqlphile.sql import SQLComposer
    except ImportError as error:
        raise ImportError(EXTRA_MISSING) from error

    class Composer(SQLComposer):
        """Columns chosen by `get()` before `select()` are kept, so the manual's
        `db.get(columns).select(tables)` reads as `db.select(tables).get(columns)`."""

        def select(self, table: Any, alias: Any = None) -> "Composer":
            chosen = [column for column in self._feed.get("select", ()) if column != "*"]
            super().select(table, alias)
            return self.get(*chosen)

    return sqlphile, Composer


class SQLPhileBuilder:
    """The builder's entry points, for a class with `execute(sql)` and `alias` (an `Alias`)."""

    def get(self, *columns: str) -> Any:
        return composer(self, self.alias.kind).get(*columns)

    def select(self, table: Any, alias: Any = None) -> Any:
        return composer(self, self.alias.kind).select(table, alias)

    def insert(self, table: Any, alias: Any = None) -> Any:
        return composer(self, self.alias.kind).insert(table, alias)

    def update(self, table: Any, alias: Any = None) -> Any:
        return composer(self, self.alias.kind).update(table, alias)

    def delete(self, table: Any, alias: Any = None) -> Any:
        return composer(self, self.alias.kind).delete(table, alias)

    def with_(self, alias: str, sql: Any = None) -> Any:
        return composer(self, self.alias.kind).with_(alias, sql)
