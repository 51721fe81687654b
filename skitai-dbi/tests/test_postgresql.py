"""was.db on PostgreSQL in a real server: rows, bound parameters, one(), 409 on a unique
violation, failed results with the database's message, timeouts that cancel the statement on
the server, a pool that survives its backends being terminated, lb and map over members."""
from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from dbserver import call, db_server
from pgutil import MEMBER, backends_running, connect, requires_postgresql

from skitai.testing import free_port, wait_for

pytestmark = requires_postgresql


@pytest.fixture(scope="module")
def server():
    other_database = MEMBER.rsplit("/", 1)[0] + "/postgres"
    unreachable = f"postgres@127.0.0.1:{free_port()}/test"
    aliases = [["@pg", "postgresql", MEMBER], ["@pair", "postgresql", [f"{MEMBER} 3", f"{other_database} 1"]],
               ["@failover", "postgresql", [f"{unreachable} 100", f"{MEMBER} 1"]],
               ["@down", "postgresql", unreachable]]
    with db_server(aliases, pool_size=3) as started:
        yield started


def sql(server, statement, params=None, **options):
    return call(server, "/sql", {"alias": "@pg", "sql": statement, "params": params, **options})


def test_rows_have_key_and_attribute_access_and_parameters_are_bound(server, schema):
    schema.sql(f"CREATE TABLE {schema.name}.weather (city text, t_high int, t_low int)")
    schema.sql(f"INSERT INTO {schema.name}.weather VALUES ('San Francisco', 46, 50), ('Hayward', 37, 54)")
    assert sql(server, f"SELECT city, t_high, t_low FROM {schema.name}.weather ORDER BY city") == (200, [
        {"city": "Hayward", "t_high": 37, "t_low": 54}, {"city": "San Francisco", "t_high": 46, "t_low": 50}])
    assert sql(server, f"SELECT city, t_low FROM {schema.name}.weather ORDER BY city", how="attributes",
               columns=["city", "t_low"]) == (200, [["Hayward", 54], ["San Francisco", 50]])
    hostile = "x'); DROP TABLE weather; --"
    assert sql(server, f"INSERT INTO {schema.name}.weather VALUES (%s, %s, %s)", [hostile, 1, 2],
               how="commit") == (200, "committed")
    assert schema.sql(f"SELECT city FROM {schema.name}.weather WHERE t_high = 1") == [(hostile,)]


def test_one_answers_the_single_row_and_410_otherwise(server, schema):
    schema.sql(f"CREATE TABLE {schema.name}.pets (id serial PRIMARY KEY, name text)")
    assert sql(server, f"INSERT INTO {schema.name}.pets (name) VALUES (%s) RETURNING id", ["Rex"],
               how="one") == (200, {"id": 1})
    assert sql(server, f"SELECT name FROM {schema.name}.pets WHERE id = %s", [2], how="one")[0] == 410
    schema.sql(f"INSERT INTO {schema.name}.pets (name) VALUES ('Tom')")
    assert sql(server, f"SELECT name FROM {schema.name}.pets", how="one")[0] == 410


def test_a_unique_or_primary_key_violation_is_409(server, schema):
    schema.sql(f"CREATE TABLE {schema.name}.users (id int PRIMARY KEY, email text UNIQUE)")
    schema.sql(f"INSERT INTO {schema.name}.users VALUES (1, 'a@example.com')")
    status, body = sql(server, f"INSERT INTO {schema.name}.users VALUES (%s, %s) RETURNING id", [1, "b@x"], how="one")
    assert status == 409 and "duplicate key" in body["error"]
    status, body = sql(server, f"INSERT INTO {schema.name}.users VALUES (%s, %s)", [2, "a@example.com"],
                       how="commit")
    assert status == 409 and "users_email_key" in body["error"]
    [result] = sql(server, f"INSERT INTO {schema.name}.users VALUES (1, 'c@x')", how="dispatch")[1]
    assert (result["status"], result["status_code"], result["reason"]) == (4, 409, "Conflict")


def test_other_database_errors_are_failed_results_with_the_message(server, schema):
    [result] = sql(server, f"SELECT nothing FROM {schema.name}.missing", how="dispatch")[1]
    assert result["status"] == 1 and result["status_code"] == 500
    assert f'relation "{schema.name}.missing" does not exist' in result["reason"]
    status, body = sql(server, "SELECT 1/0")
    assert status == 500 and body["error"].startswith("DivisionByZero: division by zero")


def test_a_statement_whose_corequest_times_out_is_cancelled_on_the_server(server):
    marker = f"sleeper-{uuid.uuid4().hex}"
    status, body = sql(server, f"SELECT pg_sleep(60) /* {marker} */", timeout=1)
    assert status == 504
    wait_for(lambda: backends_running(marker) == 0, timeout=10)
    # the connection went back to the pool in working order
    assert sql(server, "SELECT 41 + 1 AS answer", how="one") == (200, {"answer": 42})


def test_a_statement_left_running_by_returning_is_cancelled_at_its_timeout(server):
    marker = f"background-{uuid.uuid4().hex}"
    assert sql(server, f"SELECT pg_sleep(60) /* {marker} */", how="returning", timeout=3) == (200, "returned")
    wait_for(lambda: backends_running(marker) == 1, timeout=10)   # it runs on after the answer ...
    wait_for(lambda: backends_running(marker) == 0, timeout=10)   # ... until its timeout, not for 60 s
    assert sql(server, "SELECT 41 + 1 AS answer", how="one") == (200, {"answer": 42})


def test_the_pool_reconnects_after_its_backends_are_terminated(server):
    _, worker = call(server, "/pid")
    assert sql(server, "SELECT 1 AS one", how="one") == (200, {"one": 1})
    with connect() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                       [f"skitai-dbi {worker}"])
        assert cursor.rowcount >= 1
    for _ in range(5):  # more than one pooled connection may have been dropped
        assert sql(server, "SELECT 2 AS two", how="one") == (200, {"two": 2})


def test_backends_terminated_under_load_fail_only_their_statements(server):
    """pg_terminate_backend while statements run and more wait for the pool: those whose session
    was killed fail as a lost connection (502), none hangs, and the pool serves on."""
    _, worker = call(server, "/pid")
    marker = f"loaded-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(9) as pool:
        answers = [pool.submit(sql, server, f"SELECT pg_sleep(0.5) /* {marker} */", how="dispatch", timeout=15)
                   for _ in range(9)]   # three times the pool: six wait for a connection
        wait_for(lambda: backends_running(marker) >= 1, timeout=10)
        with connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
                           " AND query LIKE %s", [f"skitai-dbi {worker}", f"%{marker}%"])
            assert cursor.rowcount >= 1
        outcomes = [answer.result(timeout=30) for answer in answers]
    codes = Counter(result["status_code"] for status, [result] in outcomes)
    assert set(codes) <= {200, 502} and codes[502] >= 1 and codes[200] >= 1, codes
    for _ in range(6):  # the killed sessions are replaced
        assert sql(server, "SELECT 2 AS two", how="one") == (200, {"two": 2})


def test_lb_draws_members_by_weight(server):
    seen = Counter()
    for _ in range(120):
        status, row = call(server, "/sql", {"alias": "@pair", "session": "lb", "how": "one",
                                            "sql": "SELECT current_database() AS db"})
        assert status == 200
        seen[row["db"]] += 1
    assert set(seen) == {"test", "postgres"} and seen["test"] > seen["postgres"], seen


def test_a_member_that_cannot_be_reached_fails_over_to_the_next(server):
    for _ in range(3):
        assert call(server, "/sql", {"alias": "@failover", "how": "one", "sql": "SELECT 1 AS one"}) == (200, {"one": 1})


def test_map_runs_the_statement_on_every_member(server):
    status, results = call(server, "/sql", {"alias": "@pair", "session": "map", "how": "dispatch",
                                            "sql": "SELECT current_database() AS db"})
    assert status == 200
    assert [(r["status_code"], r["data"]) for r in results] == [(200, [{"db": "test"}]), (200, [{"db": "postgres"}])]


def test_results_are_cached_and_rm_cache_makes_them_stale(server, schema):
    table = f"{schema.name}.cities"
    schema.sql(f"CREATE TABLE {table} (name text)")
    schema.sql(f"INSERT INTO {table} VALUES ('Seoul')")

    def select():
        [result] = sql(server, f"SELECT name FROM {table} ORDER BY name", how="dispatch", cache=60,
                       use_cache_keys=["tables.cities"])[1]
        return result["cached"], [row["name"] for row in result["data"]]

    assert select() == (False, ["Seoul"])
    schema.sql(f"INSERT INTO {table} VALUES ('Busan')")  # behind the cache's back
    assert select() == (True, ["Seoul"])
    assert sql(server, f"INSERT INTO {table} VALUES (%s)", ["Daegu"], how="commit", rm_cache="tables.cities")[0] == 200
    assert select() == (False, ["Busan", "Daegu", "Seoul"])
    assert select() == (True, ["Busan", "Daegu", "Seoul"])


def test_each_worker_has_its_own_bounded_pool():
    """Two workers, pools of two: however many statements run at once, no worker holds more
    than two sessions (sessions are named after their worker process)."""
    marker = f"burst-{uuid.uuid4().hex}"
    with db_server([["@pg", "postgresql", MEMBER]], pool_size=2, workers=2) as server:
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: sql(server, f"SELECT pg_sleep(0.3) /* {marker} */", how="commit"),
                                    range(12)))
        assert answers == [(200, "committed")] * 12
        with connect() as connection, connection.cursor() as cursor:
            cursor.execute("SELECT application_name, count(*) FROM pg_stat_activity"
                           " WHERE application_name LIKE 'skitai-dbi %%' AND query LIKE %s GROUP BY 1",
                           [f"%{marker}%"])
            sessions = dict(cursor.fetchall())
    assert sessions and all(count <= 2 for count in sessions.values()), sessions
    worker_pids = {int(name.split()[1]) for name in sessions}
    assert server.process.pid not in worker_pids  # the master holds no connection


def test_a_database_that_cannot_be_reached_is_a_network_error(server):
    [result] = call(server, "/sql", {"alias": "@down", "how": "dispatch", "sql": "SELECT 1"})[1]
    assert (result["status"], result["status_code"]) == (3, 502) and "127.0.0.1" in result["reason"]
    assert call(server, "/sql", {"alias": "@down", "sql": "SELECT 1"})[0] == 502
