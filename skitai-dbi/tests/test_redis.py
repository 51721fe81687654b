"""was.db on Redis in a real server: redis-py's commands as corequests, errors, a timeout that
leaves no command blocked on the server, reconnecting after CLIENT KILL, the pool bound, map and
the result cache. Every test uses keys of its own prefix."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from dbserver import call, db_server

from skitai.testing import requires, wait_for

ADDRESS = "127.0.0.1:6379"


def _unreachable():
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5).ping()
    except redis.exceptions.ConnectionError as error:
        return f"Redis unreachable at {ADDRESS} ({error}; this machine kind starts it before each session)"
    return None


pytestmark = requires(_unreachable())


@pytest.fixture(scope="module")
def server():
    aliases = [["@redis", "redis", ADDRESS], ["@dbs", "redis", [f"{ADDRESS}/1", f"{ADDRESS}/2"]]]
    with db_server(aliases, pool_size=3) as started:
        yield started


@pytest.fixture
def prefix():
    name = f"skitai-dbi-test:{uuid.uuid4().hex}:"
    yield name
    for db in (0, 1, 2):
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        keys = list(client.scan_iter(f"{name}*"))
        if keys:
            client.delete(*keys)
        client.close()


def commands(server, *commands, **options):
    return call(server, "/redis", {"alias": "@redis", "commands": [list(command) for command in commands], **options})


def clients(worker_name=None):
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        return [entry for entry in client.client_list() if entry["name"].startswith("skitai-dbi-")
                and (worker_name is None or entry["name"] == worker_name)]
    finally:
        client.close()


def test_commands_as_corequests(server, prefix):
    assert commands(server, ("set", f"{prefix}foo", "bar")) == (200, [True])
    assert commands(server, ("get", f"{prefix}foo"), ("incr", f"{prefix}n"), ("hset", f"{prefix}h", "a", "1"),
                    ("lpush", f"{prefix}l", "x", "y")) == (200, ["bar", 1, 1, 2])  # concurrent, other keys
    assert commands(server, ("hgetall", f"{prefix}h"), ("lrange", f"{prefix}l", 0, -1), ("get", f"{prefix}none")) == (
        200, [{"a": "1"}, ["y", "x"], None])


def test_an_error_of_redis_is_a_failed_result_with_its_message(server, prefix):
    assert commands(server, ("set", f"{prefix}foo", "bar")) == (200, [True])
    [failed] = commands(server, ("incr", f"{prefix}foo"), how="dispatch")[1]
    assert (failed["status"], failed["reason"]) == (1, "value is not an integer or out of range")
    status, body = call(server, "/redis", {"alias": "@redis", "commands": [["no_such_command"]]})
    assert status == 500 and "not a Redis command" in body["error"]


def test_a_command_whose_corequest_times_out_leaves_nothing_blocked(server, prefix):
    status, _ = commands(server, ("blpop", f"{prefix}never", 30), timeout=1)
    assert status == 504
    wait_for(lambda: not [entry for entry in clients() if entry["cmd"] == "blpop"], timeout=10)
    assert commands(server, ("set", f"{prefix}after", "1")) == (200, [True])
    assert commands(server, ("get", f"{prefix}after")) == (200, ["1"])  # a connection of the pool serves again


def test_the_connections_come_back_after_client_kill(server, prefix):
    assert commands(server, ("set", f"{prefix}k", "v")) == (200, [True])
    _, worker = call(server, "/pid")
    killer = redis.Redis(host="127.0.0.1", port=6379)
    try:
        killed = [killer.client_kill_filter(_id=entry["id"]) for entry in clients(f"skitai-dbi-{worker}")]
    finally:
        killer.close()
    assert killed
    for _ in range(4):
        assert commands(server, ("get", f"{prefix}k")) == (200, ["v"])


def test_client_kill_under_load_fails_no_more_than_the_killed_commands(server, prefix):
    """CLIENT KILL while commands block on the server and more wait for the pool: each ends (its
    answer, after redis-py's retry, or a 502), none hangs, and the pool serves on."""
    _, worker = call(server, "/pid")
    with ThreadPoolExecutor(6) as pool:
        answers = [pool.submit(commands, server, ("blpop", f"{prefix}load{n}", 1), how="dispatch", timeout=15)
                   for n in range(6)]
        wait_for(lambda: [entry for entry in clients(f"skitai-dbi-{worker}") if entry["cmd"] == "blpop"],
                 timeout=10)
        killer = redis.Redis(host="127.0.0.1", port=6379)
        try:
            killed = [killer.client_kill_filter(_id=entry["id"]) for entry in clients(f"skitai-dbi-{worker}")]
        finally:
            killer.close()
        outcomes = [answer.result(timeout=30) for answer in answers]
    assert killed
    assert all(status == 200 and result["status_code"] in (200, 502) for status, [result] in outcomes), outcomes
    assert all(result["data"] is None for _, [result] in outcomes if result["status_code"] == 200)
    assert commands(server, ("set", f"{prefix}after", "1")) == (200, [True])
    assert commands(server, ("get", f"{prefix}after")) == (200, ["1"])


def test_a_worker_holds_at_most_the_pool_size_of_connections(server, prefix):
    _, worker = call(server, "/pid")
    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(lambda n: commands(server, ("blpop", f"{prefix}wait{n}", 0.3)), range(9)))
    assert answers == [(200, [None])] * 9
    assert 1 <= len(clients(f"skitai-dbi-{worker}")) <= 3


def test_map_runs_each_command_on_every_member_and_results_are_cached(server, prefix):
    assert call(server, "/redis", {"alias": "@dbs", "session": "map", "commands": [["set", f"{prefix}m", "v"]]}) == (
        200, [[True, True]])
    direct = redis.Redis(host="127.0.0.1", port=6379, db=2)
    try:
        assert direct.get(f"{prefix}m") == b"v"
        get = {"alias": "@dbs", "commands": [["get", f"{prefix}m"]], "how": "dispatch", "cache": 60}
        first = call(server, "/redis", get)[1][0]
        direct.set(f"{prefix}m", "changed")
        second = call(server, "/redis", get)[1][0]
    finally:
        direct.close()
    assert (first["cached"], second["cached"], second["data"]) == (False, True, "v")
