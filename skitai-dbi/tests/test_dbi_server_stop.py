"""A server that stops closes `was.db`'s pools and clients on its loop before the loop ends:
no Redis or PostgreSQL connection of the worker is left open. The server runs in this process
(`ServerThread`), which lives on after it, so a connection only dropped would stay open."""
from __future__ import annotations

import gc
import json
import os
import warnings

import httpx
import redis
from pgutil import MEMBER, connect, requires_postgresql

from skitai import was
from skitai.testing import ServerThread, requires, wait_for
from skitai_dbi import plugin


def _redis_unreachable():
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5).ping()
    except redis.exceptions.ConnectionError as error:
        return f"Redis unreachable at 127.0.0.1:6379 ({error}; this machine kind starts it before each session)"
    return None


def redis_clients(name):
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        return [entry for entry in client.client_list() if entry["name"] == name]
    finally:
        client.close()


def pg_sessions(application_name):
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name])
        return cursor.fetchone()[0]


def dbi_server(app, aliases):
    server = ServerThread()
    server.kernel.pm.register(plugin)
    plugin.skitai_register_backends(backends=server.kernel.backends)
    for name, kind, members in aliases:
        server.kernel.aliases.add(name, kind, members)
    return server.mount("/", app)


def app(environ, start_response):
    with was.db("@redis") as db:
        db.set("skitai-dbi-test:stop", "1").wait(timeout=5)
        tasks = [db.get("skitai-dbi-test:stop") for _ in range(3)]   # more connections of the pool
    answers = [task.fetch(timeout=5).decode() for task in tasks]
    with was.db("@pg") as db:
        rows = was.Tasks([db.execute("SELECT pg_sleep(0.1), 1 AS one") for _ in range(2)]).fetch(timeout=5)
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps([answers, len(rows)]).encode()]


@requires(_redis_unreachable())
@requires_postgresql
def test_stopping_closes_the_redis_clients_and_postgresql_pools():
    redis_name, pg_name = f"skitai-dbi-{os.getpid()}", f"skitai-dbi {os.getpid()}"
    gc.collect()  # what earlier tests left behind is not this test's business
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with dbi_server(app, [("@redis", "redis", "127.0.0.1:6379"), ("@pg", "postgresql", MEMBER)]) as server:
            assert httpx.get(server.url("/"), timeout=20).json() == [["1", "1", "1"], 2]
            assert len(redis_clients(redis_name)) >= 1 and pg_sessions(pg_name) >= 1
        gc.collect()
    # closed, not dropped: redis-py warns of a connection that was garbage-collected open
    assert [str(warning.message) for warning in caught if "unclosed" in str(warning.message)
            and "redis" in str(warning.message)] == []
    wait_for(lambda: not redis_clients(redis_name), timeout=10)
    wait_for(lambda: pg_sessions(pg_name) == 0, timeout=10)
