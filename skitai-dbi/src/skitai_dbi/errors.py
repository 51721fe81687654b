"""How database errors become corequest results.

- a unique or primary-key violation (MongoDB: a duplicate key): HTTP 409 Conflict (the manual: an `INSERT ... RETURNING`
  that collides answers 409), a completed result whose `fetch()`/`one()` raise `HTTPError(409)`;
- a statement cancelled (the corequest timed out) or stopped by `statement_timeout`, a Redis
  socket timeout, a MongoDB operation past its `max_time_ms`: STA_TIMEOUT;
- a server that cannot be reached, or a connection that broke: STA_NETERR;
- any other database error: STA_REQFAIL whose `reason` is the database's message and whose
  `fetch()` raises the driver's exception (`psycopg2.errors.UndefinedTable`, `sqlite3.OperationalError`,
  `redis.exceptions.ResponseError`, `pymongo.errors.OperationFailure` ...).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from skitai import HTTPError
from skitai.corequest import STA_NETERR, STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, Result


class DatabaseUnreachable(ConnectionError):
    """No connection could be opened to a member (refused, unknown host, authentication)."""


def database_result(error: Exception) -> Result | None:
    """The `Result` for a database driver's exception, or None for other exceptions."""
    errors = driver_errors()
    if isinstance(error, errors.unique) or _sqlite_unique(error):
        conflict = HTTPError(409, first_line(error))
        return Result(STA_NORMAL, 409, "Conflict", None, (), conflict)
    if isinstance(error, errors.timeout):
        return Result.failure(STA_TIMEOUT, error)
    if isinstance(error, DatabaseUnreachable) or (isinstance(error, errors.lost) and not _pg_statement_error(error)):
        return Result.failure(STA_NETERR, error, first_line(error))
    if isinstance(error, errors.failed):
        return Result.failure(STA_REQFAIL, error, first_line(error))
    return None


@dataclass(frozen=True)
class DriverErrors:
    unique: tuple[type[Exception], ...]   # a unique or primary key violated
    timeout: tuple[type[Exception], ...]  # a statement cancelled or past its time limit
    lost: tuple[type[Exception], ...]     # the connection (PostgreSQL: unless a statement caused it)
    failed: tuple[type[Exception], ...]   # any error of the driver


def driver_errors() -> DriverErrors:
    """The exception classes of the drivers loaded. Each driver module, with its library, is
    imported only when an alias of its kind is declared (see `plugin`): the libraries cost every
    worker several MiB (pymongo 24), and before one is loaded no error can be one of its."""
    unique, timeout, lost, failed = [], [], [], []
    if "sqlite3" in sys.modules:
        failed.append(sys.modules["sqlite3"].Error)
    if "psycopg2" in sys.modules:
        import psycopg2.errors

        unique.append(psycopg2.errors.UniqueViolation)
        timeout.append(psycopg2.extensions.QueryCanceledError)
        lost.extend((psycopg2.OperationalError, psycopg2.InterfaceError))
        failed.append(psycopg2.Error)
    if "redis" in sys.modules:
        import redis.exceptions

        timeout.append(redis.exceptions.TimeoutError)
        lost.append(redis.exceptions.ConnectionError)
        failed.append(redis.exceptions.RedisError)
    if "pymongo" in sys.modules:
        import pymongo.errors

        unique.append(pymongo.errors.DuplicateKeyError)
        timeout.append(pymongo.errors.ExecutionTimeout)
        failed.append(pymongo.errors.PyMongoError)
    return DriverErrors(tuple(unique), tuple(timeout), tuple(lost), tuple(failed))


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _pg_statement_error(error: Exception) -> bool:
    """An OperationalError that a statement caused (a lock timeout, say) rather than a lost
    connection: the server answered with an SQLSTATE outside class 08 (connection exception)
    and 57P (operator intervention: shutdown, terminated backend)."""
    code = getattr(error, "pgcode", None)
    return bool(code) and not code.startswith(("08", "57P"))


def _sqlite_unique(error: Exception) -> bool:
    # SQLite words primary-key collisions the same way ("UNIQUE constraint failed: t.id")
    sqlite3 = sys.modules.get("sqlite3")
    return (sqlite3 is not None and isinstance(error, sqlite3.IntegrityError)
            and str(error).startswith("UNIQUE constraint failed"))
