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

import sqlite3
import sys

import psycopg2
import psycopg2.errors
import redis.exceptions

from skitai import HTTPError
from skitai.corequest import STA_NETERR, STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, Result


class DatabaseUnreachable(ConnectionError):
    """No connection could be opened to a member (refused, unknown host, authentication)."""


def database_result(error: Exception) -> Result | None:
    """The `Result` for a database driver's exception, or None for other exceptions."""
    mongo = _mongo_errors()
    if isinstance(error, (psycopg2.errors.UniqueViolation, *mongo[:1])) or _sqlite_unique(error):
        conflict = HTTPError(409, first_line(error))
        return Result(STA_NORMAL, 409, "Conflict", None, (), conflict)
    if isinstance(error, (psycopg2.extensions.QueryCanceledError, redis.exceptions.TimeoutError, *mongo[1:2])):
        return Result.failure(STA_TIMEOUT, error)
    if isinstance(error, DatabaseUnreachable) or (
            isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not _pg_statement_error(error)):
        return Result.failure(STA_NETERR, error, first_line(error))
    if isinstance(error, redis.exceptions.ConnectionError):
        return Result.failure(STA_NETERR, error, first_line(error))
    if isinstance(error, (psycopg2.Error, sqlite3.Error, redis.exceptions.RedisError, *mongo[2:])):
        return Result.failure(STA_REQFAIL, error, first_line(error))
    return None


def _mongo_errors() -> tuple[type[Exception], ...]:
    """pymongo's (duplicate key, past max_time_ms, any) errors once pymongo is loaded, else none:
    pymongo costs each worker about 24 MiB, so `mongodb.py` imports it only when a MongoDB alias
    is used, and before that no error can be one of its."""
    errors = sys.modules.get("pymongo.errors")
    if errors is None:
        return ()
    return errors.DuplicateKeyError, errors.ExecutionTimeout, errors.PyMongoError


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
    return isinstance(error, sqlite3.IntegrityError) and str(error).startswith("UNIQUE constraint failed")
