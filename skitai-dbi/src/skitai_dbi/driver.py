"""`was.db`: database statements as corequests.

    with was.db("@mypg") as db:
        rows = db.execute("SELECT * FROM cities WHERE id = %s", (7,)).fetch()

`was.db(alias)` (and its other spelling `was.db.lb(alias)`) runs each statement on one member
of the alias, chosen by weight, the next ones being the fail-over when it cannot be reached;
`was.db.map(alias)` runs each statement on every member and answers a `Tasks` of them.
`use_cache`, `rm_cache` and `timeout` given to `was.db(...)` apply to its statements.
"""
from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from skitai.backends import DB_MONGODB, DB_REDIS, DJANGO, Alias, Member
from skitai.corequest import Driver, Result, Task, Tasks

from .djangodb import django_database
from .errors import database_result
from .sqlphile_builder import SQLPhileBuilder


class Database(Driver):
    """The `was.db` service of one worker: the backends of the kinds it serves, by kind, each
    made by its factory at the first statement to an alias of the kind (see `plugin`)."""

    def __init__(self, was: Any, factories: dict[str, Callable[[], Any]]) -> None:
        super().__init__(was)
        self.factories = factories
        self.backends: dict[str, Any] = {}  # those made

    def __call__(self, alias: str, use_cache: Any = True, rm_cache: Any = None,
                 timeout: float | None = None) -> "BaseSession":
        found = self.alias(alias)
        return _SESSIONS.get(found.kind, Session)(self, found, use_cache, rm_cache, timeout)

    def lb(self, alias: str, use_cache: Any = True, rm_cache: Any = None,
           timeout: float | None = None) -> "BaseSession":
        """The manual's load-balanced spelling: the same as `was.db(alias)`."""
        return self(alias, use_cache, rm_cache, timeout)

    def map(self, alias: str, use_cache: Any = True, rm_cache: Any = None,
            timeout: float | None = None) -> "BaseSession":
        """Each statement runs on every member; its corequest is a `Tasks`, one per member."""
        found = self.alias(alias)
        return _MAP_SESSIONS.get(found.kind, MapSession)(self, found, use_cache, rm_cache, timeout)

    def alias(self, name: str) -> Alias:
        alias = self.was.server.kernel.aliases.get(name)
        if alias.kind == DJANGO:  # the project's default database, under the alias's name
            alias = django_database(alias)
        if alias.kind not in self.factories:
            raise ValueError(f"{alias.name} is a {alias.kind} alias: was.db serves "
                             f"{', '.join(sorted(self.factories))}")
        return alias

    def backend(self, alias: Alias) -> Any:
        backend = self.backends.get(alias.kind)
        if backend is None:  # two threads may make one each: only the first stays, before it opened anything
            backend = self.backends.setdefault(alias.kind, self.factories[alias.kind]())
        return backend

    def map_error(self, error: Exception) -> Result:
        return database_result(error) or super().map_error(error)

    async def aclose(self) -> None:
        """The server stops: every backend closes its pools and clients (`skitai_server_stop`
        awaits this on the loop, which the clients' sockets belong to)."""
        await asyncio.gather(*(backend.aclose() for backend in self.backends.values()))


class BaseSession:
    """What every `with was.db(alias) as db` gives: the alias and the corequest options."""

    def __init__(self, driver: Database, alias: Alias, use_cache: Any, rm_cache: Any, timeout: float | None) -> None:
        self.driver = driver
        self.alias = alias
        self.use_cache = use_cache
        self.rm_cache = rm_cache
        self.timeout = timeout

    def __enter__(self) -> "BaseSession":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Nothing to release: each statement takes a pooled connection only while it runs."""

    def _bundle(self, tasks: list[Task]) -> Tasks:
        return Tasks(tasks) if self.timeout is None else Tasks(tasks, timeout=self.timeout)


class Session(SQLPhileBuilder, BaseSession):
    """An SQL database's session: statements on one member at a time, written by hand or with
    SQLPhile's builder (`db.select("users").filter(id=7).execute()`)."""

    def execute(self, sql: str, params: Any = None) -> Task:
        """Start `sql` with `params` bound by the driver (`%s` placeholders for PostgreSQL, `?`
        for SQLite): a Task whose data is the list of rows (empty for statements without)."""
        return self._start(sql, params, by_weight(self.alias.members), ())

    def _start(self, sql: str, params: Any, members: Sequence[Member], key_extra: tuple) -> Task:
        backend = self.driver.backend(self.alias)
        key = statement_key(self.alias.name, sql, params, key_extra)
        return self.driver.start(functools.partial(backend.execute, members, sql, params), key,
                                 use_cache=self.use_cache, rm_cache=self.rm_cache, timeout=self.timeout)


class MapSession(Session):
    """What `with was.db.map(alias) as db` gives: each statement on every member."""

    def execute(self, sql: str, params: Any = None) -> Tasks:
        return self._bundle([self._start(sql, params, (member,), (member,)) for member in self.alias.members])


class CommandSession(BaseSession):
    """The session of a kind whose calls are methods of its client rather than SQL: each
    method its backend's `is_command` allows is a method of the session, each call a Task."""

    kind = ""

    def __getattr__(self, name: str) -> Any:
        if not self.driver.backend(self.alias).is_command(name):
            raise AttributeError(f"{name!r} is not a {self.kind} command was.db serves")
        return functools.partial(self._command, name)

    def execute(self, sql: str, params: Any = None) -> Task:
        raise TypeError(f"{self.alias.name} is a {self.kind} alias: call its methods, not SQL")

    def _command(self, name: str, *args: Any, **kwargs: Any) -> Task:
        return self._start_command(name, args, kwargs, by_weight(self.alias.members), ())

    def _start_command(self, name: str, args: tuple, kwargs: dict, members: Sequence[Member],
                       key_extra: tuple) -> Task:
        backend = self.driver.backend(self.alias)
        key = statement_key(self.alias.name, name, (args, tuple(sorted(kwargs.items()))), key_extra)
        return self.driver.start(functools.partial(backend.command, members, name, args, kwargs), key,
                                 use_cache=self.use_cache, rm_cache=self.rm_cache, timeout=self.timeout)


class CommandMapSession(CommandSession):
    """`was.db.map(alias)` of such a kind: each call on every member, a `Tasks`."""

    def _command(self, name: str, *args: Any, **kwargs: Any) -> Tasks:
        return self._bundle([self._start_command(name, args, kwargs, (member,), (member,))
                             for member in self.alias.members])


class RedisSession(CommandSession):
    """`with was.db("@myredis") as db`: every command of `redis.asyncio.Redis` as a method
    (`db.set("foo", "bar")`, `db.get("foo")`, `db.hgetall("h")` ...)."""

    kind = "Redis"


class RedisMapSession(RedisSession, CommandMapSession):
    pass


class MongoSession(CommandSession):
    """`with was.db("@mymongo") as db`: `db.find("cities", {...})`, `db.insert_one(...)` ...
    (see `skitai_dbi.mongodb`)."""

    kind = "MongoDB"


class MongoMapSession(MongoSession, CommandMapSession):
    pass


_SESSIONS = {DB_REDIS: RedisSession, DB_MONGODB: MongoSession}
_MAP_SESSIONS = {DB_REDIS: RedisMapSession, DB_MONGODB: MongoMapSession}


def by_weight(members: Sequence[Member]) -> list[Member]:
    """All members, ordered by a weighted draw: a member of weight 20 comes first twice as
    often as one of weight 10. The first serves; the others are the fail-over order."""
    if len(members) == 1:
        return list(members)
    # weighted random order without replacement (Efraimidis-Spirakis: key u ** (1/w))
    return sorted(members, key=lambda member: random.random() ** (1.0 / member.weight), reverse=True)


def statement_key(alias: str, sql: str, params: Any, extra: tuple = ()) -> Hashable | None:
    """The result-cache key of a statement; None (never cached) when its parameters are not
    plain values."""
    if isinstance(params, dict):
        params = tuple(sorted(params.items()))
    elif isinstance(params, list):
        params = tuple(params)
    key = (alias, sql, params, extra)
    try:
        hash(key)
    except TypeError:
        return None
    return key
