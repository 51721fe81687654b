"""DB_MONGODB: collection methods of pymongo's asynchronous client as corequests.

    skitai.alias("@mymongo", skitai.DB_MONGODB, "127.0.0.1:27017/mydb")

    with was.db("@mymongo") as db:
        documents = db.find("cities", {"city": "New York"}).fetch()
        db.insert_one("cities", {"city": "Seoul"}).wait()

Each method of `MONGODB_METHODS` takes the collection's name first, then pymongo's own
arguments (`pymongo.asynchronous.collection.AsyncCollection`). `find` and `aggregate` answer
the list of documents (the cursor read to its end: give `limit=` for big collections); the
others answer what pymongo answers (`InsertOneResult`, `UpdateResult`, a number, a document or
None).

Each worker has an `AsyncMongoClient` per member (pymongo >= 4.10) whose pool holds at most the
plugin's pool size, on the worker's loop. pymongo reconnects by itself after a server restart; a
corequest that times out cancels its operation, and pymongo closes the connection it ran on.
"""
from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

import pymongo
import pymongo.errors

from skitai.backends import Member

from .errors import DatabaseUnreachable

# seconds to find a member's server before the call fails (STA_NETERR): pymongo keeps trying a
# refused address until then, so it is below the corequests' default timeout (10 s)
CONNECT_TIMEOUT = 5

# the collection methods served; find and aggregate answer their cursor's documents
MONGODB_METHODS = frozenset((
    "find", "find_one", "aggregate", "count_documents", "estimated_document_count", "distinct",
    "insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one", "delete_many",
    "find_one_and_update", "find_one_and_replace", "find_one_and_delete", "bulk_write"))
_CURSORS = frozenset(("find", "aggregate"))


def is_method(name: str) -> bool:
    return name in MONGODB_METHODS


class MongoBackend:
    """The MongoDB clients of one worker, one per member, created on first use."""

    is_command = staticmethod(is_method)  # which attributes of a session are collection methods

    def __init__(self, size: int) -> None:
        self.size = size
        self.clients: dict[Member, pymongo.AsyncMongoClient] = {}

    def client(self, member: Member) -> pymongo.AsyncMongoClient:
        client = self.clients.get(member)
        if client is None:
            client = self.clients[member] = pymongo.AsyncMongoClient(
                member.host, member.port or 27017, username=member.user or None,
                password=member.password or None, maxPoolSize=self.size, appname=f"skitai-dbi {os.getpid()}",
                serverSelectionTimeoutMS=CONNECT_TIMEOUT * 1000, connectTimeoutMS=CONNECT_TIMEOUT * 1000)
        return client

    async def command(self, members: Sequence[Member], name: str, args: tuple, kwargs: dict) -> Any:
        """`collection.name(*args, **kwargs)`, the collection's name being `args[0]`, on the
        first member whose server can be found (the others are the fail-over)."""
        if not args or not isinstance(args[0], str):
            raise TypeError(f"db.{name}(collection, ...): the collection's name comes first")
        collection, *args = args
        failure: Exception | None = None
        for member in members:
            target = self.client(member)[member.database][collection]
            try:
                if name in _CURSORS:
                    cursor = getattr(target, name)(*args, **kwargs)
                    if name == "aggregate":
                        cursor = await cursor
                    return await cursor.to_list()
                return await getattr(target, name)(*args, **kwargs)
            except (pymongo.errors.ServerSelectionTimeoutError, pymongo.errors.AutoReconnect) as error:
                failure = DatabaseUnreachable(f"{member.address}: {error}")
        raise failure

    async def aclose(self) -> None:
        """The server stops: each client closes its connections and monitors (on the loop they
        belong to, before it ends)."""
        clients, self.clients = list(self.clients.values()), {}
        await asyncio.gather(*(client.close() for client in clients))


def backend(pool_size: int) -> MongoBackend:
    return MongoBackend(pool_size)
