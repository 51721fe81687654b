"""DB_PGSQL: connecting to a member with psycopg2's asynchronous connections."""
from __future__ import annotations

import os

from psycopg2.extensions import make_dsn

from skitai.backends import Member

from .backend import Backend
from .pgconn import PgConnection

CONNECT_TIMEOUT = 10  # seconds, for a member that does not answer at all


def dsn(member: Member) -> str:
    """The libpq connection string of a member; sessions are named after the worker process
    (`application_name`, seen in pg_stat_activity)."""
    parts = {"host": member.host, "port": member.port, "user": member.user or None,
             "password": member.password or None, "dbname": member.database,
             "connect_timeout": CONNECT_TIMEOUT, "application_name": f"skitai-dbi {os.getpid()}"}
    return make_dsn(**{name: value for name, value in parts.items() if value is not None})


async def connect(member: Member) -> PgConnection:
    return await PgConnection.open(dsn(member), f"{member.address}/{member.database}")


def backend(pool_size: int) -> Backend:
    return Backend(connect, pool_size)
