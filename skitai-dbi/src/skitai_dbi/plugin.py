"""The skitai-dbi plugin: the database alias kinds (PostgreSQL, SQLite, Redis, MongoDB, a
Django project's database), `was.db` and `was.transaction`."""
from __future__ import annotations

import functools

import skitai
from skitai.plugin import hookimpl

from . import postgresql
from .backend import Backend
from .djangodb import check_django
from .driver import Database
from .members import check_postgresql, check_sqlite
from .mongodb import MongoBackend, check_mongodb
from .redisdb import RedisBackend, check_redis
from .settings import settings
from .sqliteconn import SqliteConnection
from .transaction import Transaction

PLUGIN = "skitai-dbi"


@hookimpl
def skitai_register_backends(backends):
    backends.add(skitai.DB_PGSQL, PLUGIN, validate=check_postgresql)
    backends.add(skitai.DB_SQLITE3, PLUGIN, paths=True, validate=check_sqlite)
    backends.add(skitai.DB_REDIS, PLUGIN, validate=check_redis)
    backends.add(skitai.DB_MONGODB, PLUGIN, validate=check_mongodb)
    backends.add(skitai.DJANGO, PLUGIN, paths=True, validate=check_django)


@hookimpl
def skitai_register_services(was):
    database = Database(was, {skitai.DB_PGSQL: Backend(postgresql.connect, settings.pool_size),
                              skitai.DB_SQLITE3: Backend(SqliteConnection.open, settings.pool_size),
                              skitai.DB_REDIS: RedisBackend(settings.pool_size),
                              skitai.DB_MONGODB: MongoBackend(settings.pool_size)})
    was.add_service("db", database)
    was.add_service("transaction", functools.partial(Transaction, database))


@hookimpl
def skitai_server_stop(server):
    """Close the pools and clients of `was.db`; the server awaits it before its loop ends."""
    database = server.was.services.get("db") if server.was is not None else None
    if isinstance(database, Database):
        return database.aclose()
    return None
