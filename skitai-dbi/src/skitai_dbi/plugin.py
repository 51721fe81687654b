"""The skitai-dbi plugin: the database alias kinds (PostgreSQL, SQLite, Redis, MongoDB, a
Django project's database), `was.db` and `was.transaction`.

Each kind's driver module, with its library (psycopg2, sqlite3, redis, pymongo), is imported when
the script declares an alias of that kind, not when the plugin loads: every script loads every
installed plugin, and those libraries cost each worker several MiB (pymongo 24) whether its app
uses a database or not. A library that cannot be imported stops the script at that
`skitai.alias()`, naming it. `was.db` and `was.transaction` are made at their first use."""
from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

import skitai
from skitai.backends import Alias
from skitai.plugin import hookimpl, import_feature

from .djangodb import django_database
from .members import check_mongodb, check_postgresql, check_redis, check_sqlite
from .settings import settings

if TYPE_CHECKING:
    from .driver import Database

PLUGIN = "skitai-dbi"

# the module that talks to each kind (its `backend(pool_size)`), and the check of its aliases
DRIVERS = {
    skitai.DB_PGSQL: ("skitai_dbi.postgresql", check_postgresql),
    skitai.DB_SQLITE3: ("skitai_dbi.sqliteconn", check_sqlite),
    skitai.DB_REDIS: ("skitai_dbi.redisdb", check_redis),
    skitai.DB_MONGODB: ("skitai_dbi.mongodb", check_mongodb),
}


def driver(kind: str) -> ModuleType:
    return import_feature(DRIVERS[kind][0], f"a {kind} alias", PLUGIN)


def _declared(alias: Alias) -> None:
    """An alias passes its kind's check, and its driver is loaded (a DJANGO alias: that of the
    project's database)."""
    if alias.kind == skitai.DJANGO:
        alias = django_database(alias)  # checked as an alias of its database's kind
    else:
        DRIVERS[alias.kind][1](alias)
    driver(alias.kind)


@hookimpl
def skitai_register_backends(backends):
    backends.add(skitai.DB_PGSQL, PLUGIN, validate=_declared)
    backends.add(skitai.DB_SQLITE3, PLUGIN, paths=True, validate=_declared)
    backends.add(skitai.DB_REDIS, PLUGIN, validate=_declared)
    backends.add(skitai.DB_MONGODB, PLUGIN, validate=_declared)
    backends.add(skitai.DJANGO, PLUGIN, paths=True, validate=_declared)


def _factory(kind: str) -> Callable[[], object]:
    return lambda: driver(kind).backend(settings.pool_size)


def _database(was) -> Database:
    """The worker's `was.db`, made at the first use of `was.db` or `was.transaction`."""
    database = getattr(was.server, "skitai_dbi_database", None)
    if database is None:
        from .driver import Database  # here: the corequest machinery, for apps that use a database

        database = was.server.skitai_dbi_database = Database(was, {kind: _factory(kind) for kind in DRIVERS})
    return database


def _transaction(was) -> Callable[..., object]:
    from .transaction import Transaction

    return functools.partial(Transaction, _database(was))


@hookimpl
def skitai_register_services(was):
    was.add_lazy_service("db", lambda: _database(was))
    was.add_lazy_service("transaction", lambda: _transaction(was))


@hookimpl
def skitai_server_stop(server):
    """Close the pools and clients of `was.db`; the server awaits it before its loop ends."""
    database = getattr(server, "skitai_dbi_database", None)  # made at the first use, if any
    if database is not None:
        return database.aclose()
    return None
