"""What the plugin asks of the aliases a script declares, checked at `skitai.alias()` time so a
mistake stops the script in one line instead of failing its first query."""
from __future__ import annotations

from skitai.backends import Alias


def check_postgresql(alias: Alias) -> None:
    """Every PostgreSQL member names its database (`user:password@host:port/database`)."""
    for member in alias.members:
        if not member.database:
            raise ValueError(f"member {member} names no database: write user:password@host:port/database")


def check_sqlite(alias: Alias) -> None:
    """An SQLite member is a file path (given relative to the script's folder); ':memory:' would
    be a different empty database per connection, so it is refused."""
    for member in alias.members:
        if member.path.endswith(":memory:"):
            raise ValueError("':memory:' is a new empty database per connection: give a file path")


def check_redis(alias: Alias) -> None:
    """A Redis member's database, when given, is a number (`host:port/2`)."""
    for member in alias.members:
        if member.database and not member.database.isdigit():
            raise ValueError(f"member {member}: a Redis database is a number, not {member.database!r}")


def check_mongodb(alias: Alias) -> None:
    """A MongoDB member names its database (`host:port/database`)."""
    for member in alias.members:
        if not member.database or "/" in member.database:
            raise ValueError(f"member {member}: write host:port/database (collections are named by the calls)")
