"""The PostgreSQL server the tests use (127.0.0.1:5432, trust auth, database `test`, as on
every machine of this project and in CI), a schema of its own per test, and the skip (or,
under CI=true, the failure) when it cannot be reached."""
from __future__ import annotations

import os
import uuid

import psycopg2
import pytest

from skitai.testing import requires

HOST = os.environ.get("SKITAI_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("SKITAI_TEST_PG_PORT", "5432"))
USER = os.environ.get("SKITAI_TEST_PG_USER", "postgres")
DATABASE = "test"
MEMBER = f"{USER}@{HOST}:{PORT}/{DATABASE}"


def connect(database: str = DATABASE):
    connection = psycopg2.connect(host=HOST, port=PORT, user=USER, dbname=database, connect_timeout=5)
    connection.autocommit = True
    return connection


def _unreachable() -> str | None:
    try:
        connect().close()
    except psycopg2.OperationalError as error:
        return (f"PostgreSQL unreachable at {HOST}:{PORT} ({str(error).strip()}; this machine kind "
                "starts it before each session: pg_ctlcluster <version> main start)")
    return None


requires_postgresql = requires(_unreachable())


def backends_running(marker: str) -> int:
    """How many sessions are running a statement that contains `marker`."""
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s"
                       " AND pid <> pg_backend_pid()", [f"%{marker}%"])
        return cursor.fetchone()[0]


class Schema:
    """A schema made for one test, dropped after it; `sql()` runs statements in it."""

    def __init__(self) -> None:
        self.name = f"t_{uuid.uuid4().hex[:12]}"
        self.connection = connect()
        self.sql(f"CREATE SCHEMA {self.name}")

    def sql(self, statement: str, params=None) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def drop(self) -> None:
        self.sql(f"DROP SCHEMA {self.name} CASCADE")
        self.connection.close()


@pytest.fixture
def schema():
    made = Schema()
    yield made
    made.drop()
