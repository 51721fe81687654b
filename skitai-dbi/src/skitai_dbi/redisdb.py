"""DB_REDIS: Redis commands as corequests, on `redis.asyncio`.

    with was.db("@myredis") as db:
        db.set("foo", "bar").wait()
        value = db.get("foo").fetch()          # b"bar": values are bytes, as redis-py gives them

Any command of `redis.asyncio.Redis` is a method of the session (`hset`, `incr`, `lpush`,
`expire` ...), started at once on the worker's loop. Each worker has a client per member whose
connection pool holds at most the plugin's pool size (commands beyond it wait for a connection
within their timeout); redis-py reconnects and retries a command whose connection the server
closed (a restart, `CLIENT KILL`). Connections are named `skitai-dbi-<worker pid>` (`CLIENT LIST`).
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import redis.asyncio

from skitai.backends import Member

from .errors import DatabaseUnreachable


def is_command(name: str) -> bool:
    return not name.startswith("_") and callable(getattr(redis.asyncio.Redis, name, None)) and name not in _NOT_COMMANDS


# methods of the client that are not commands answering a value (they hand out objects bound to
# a connection, or manage the client itself)
_NOT_COMMANDS = frozenset(("pipeline", "pubsub", "monitor", "lock", "transaction", "close", "aclose",
                           "connection_pool", "from_url", "from_pool", "register_script", "client",
                           "get_connection_kwargs", "get_encoder", "get_retry", "set_retry", "load_external_module",
                           "initialize", "execute_command", "parse_response", "set_response_callback"))


class RedisBackend:
    """The Redis clients of one worker, one per member, created on first use."""

    is_command = staticmethod(is_command)  # which attributes of a session are commands

    def __init__(self, size: int) -> None:
        self.size = size
        self.clients: dict[Member, redis.asyncio.Redis] = {}

    def client(self, member: Member) -> redis.asyncio.Redis:
        client = self.clients.get(member)
        if client is None:
            pool = redis.asyncio.BlockingConnectionPool(
                host=member.host, port=member.port or 6379, db=int(member.database or 0),
                username=member.user or None, password=member.password or None,
                max_connections=self.size, timeout=None, client_name=f"skitai-dbi-{os.getpid()}")
            client = self.clients[member] = redis.asyncio.Redis(connection_pool=pool)
        return client

    async def command(self, members: Sequence[Member], name: str, args: tuple, kwargs: dict) -> Any:
        """`name(*args, **kwargs)` on the first member that can be reached (the others are the
        fail-over)."""
        failure: Exception | None = None
        for member in members:
            try:
                return await getattr(self.client(member), name)(*args, **kwargs)
            except redis.exceptions.ConnectionError as error:  # after redis-py's own retries
                failure = DatabaseUnreachable(f"{member.address}: {error}")
        raise failure

    async def aclose(self) -> None:
        """The server stops: each client closes its pool's connections (on the loop they
        belong to, before it ends)."""
        clients, self.clients = list(self.clients.values()), {}
        await asyncio.gather(*(client.aclose(close_connection_pool=True) for client in clients))


def backend(pool_size: int) -> RedisBackend:
    return RedisBackend(pool_size)
