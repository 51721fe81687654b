"""was.transaction on PostgreSQL in a real server: commit, rollback, DB-API fetches, errors in
the block, and a transaction nobody ended rolled back and its connection returned when the
request ends (a pool of one connection keeps serving)."""
from __future__ import annotations

import uuid

import pytest
from dbserver import call, db_server
from pgutil import MEMBER, backends_running, requires_postgresql

from skitai.testing import wait_for

pytestmark = requires_postgresql


@pytest.fixture(scope="module")
def server():
    with db_server([["@pg", "postgresql", MEMBER]], pool_size=1) as started:
        yield started


def transaction(server, *steps, **options):
    return call(server, "/transaction", {"alias": "@pg", "steps": [list(step) for step in steps], **options})


def pool_serves(server):
    """Whether a statement gets a connection (the pool has one) within 5 seconds."""
    return call(server, "/sql", {"alias": "@pg", "sql": "SELECT 1 AS one", "how": "one", "timeout": 5}) == (
        200, {"one": 1})


@pytest.fixture
def table(schema):
    name = f"{schema.name}.items"
    schema.sql(f"CREATE TABLE {name} (id int PRIMARY KEY, label text)")
    return name


def labels(schema, table):
    return [label for (label,) in schema.sql(f"SELECT label FROM {table} ORDER BY id")]


def test_a_committed_transaction_is_seen_and_fetches_work_as_in_db_api(server, schema, table):
    status, fetched = transaction(
        server,
        ("execute", f"INSERT INTO {table} VALUES (%s, %s), (%s, %s), (%s, %s)", [1, "a", 2, "b", 3, "c"]),
        ("execute", f"UPDATE {table} SET label = upper(label) WHERE id = %s", [2]),
        ("execute", f"SELECT id, label FROM {table} ORDER BY id"),
        ("fetchone",), ("fetchmany", 1), ("fetch",),
        ("commit",))
    assert status == 200
    assert fetched == [{"id": 1, "label": "a"}, [{"id": 2, "label": "B"}], [{"id": 3, "label": "c"}]]
    assert labels(schema, table) == ["a", "B", "c"]


def test_a_rolled_back_transaction_leaves_nothing(server, schema, table):
    assert transaction(server, ("execute", f"INSERT INTO {table} VALUES (1, 'a')"), ("rollback",),
                       ("execute", f"INSERT INTO {table} VALUES (2, 'b')"), ("commit",)) == (200, [])
    assert labels(schema, table) == ["b"]


def test_an_error_in_the_block_rolls_back(server, schema, table):
    status, _ = transaction(server, ("execute", f"INSERT INTO {table} VALUES (1, 'a')"), ("raise",))
    assert status == 418 and labels(schema, table) == []


def test_a_unique_violation_in_a_transaction_is_409(server, schema, table):
    status, body = transaction(server, ("execute", f"INSERT INTO {table} VALUES (1, 'a')"),
                               ("execute", f"INSERT INTO {table} VALUES (1, 'b')"), ("commit",))
    assert status == 409 and "duplicate key" in body["error"] and labels(schema, table) == []


@pytest.mark.parametrize("options", [{"bare": True}, {"auto_putback": False}, {}],
                         ids=["never-put-back", "auto_putback-False", "with-block"])
def test_a_transaction_never_ended_is_rolled_back_and_its_connection_returned(server, schema, table, options):
    """The pool has one connection: a forgotten transaction that kept it would make every
    following request wait and time out."""
    for number in range(3):
        status, _ = transaction(server, ("execute", f"INSERT INTO {table} VALUES (%s, 'lost')", [number]), **options)
        assert status == 200
        assert pool_serves(server)
    assert labels(schema, table) == []
    assert "neither committed nor rolled back: rolled back" in server.output


def test_auto_putback_false_keeps_the_connection_after_the_block_as_the_manual_shows(server, schema, table):
    """The manual's models.update(): the block returns the transaction, the caller fetches
    and commits after it."""
    assert transaction(server, ("execute", f"INSERT INTO {table} VALUES (1, 'kept') RETURNING label"),
                       auto_putback=False) == (200, [])
    assert labels(schema, table) == []  # not committed: rolled back at the request's end
    insert = f"INSERT INTO {table} VALUES (2, 'late') RETURNING label"
    status, fetched = call(server, "/transaction", {"alias": "@pg", "auto_putback": False,
                                                     "steps": [["execute", insert]], "then": [["fetch"], ["commit"]]})
    assert (status, fetched) == (200, [[{"label": "late"}]])
    assert labels(schema, table) == ["late"]


def test_a_statement_that_times_out_ends_the_transaction_and_frees_its_connection(server, schema, table):
    marker = f"tx-sleeper-{uuid.uuid4().hex}"
    status, _ = transaction(server, ("execute", f"INSERT INTO {table} VALUES (1, 'a')"),
                            ("execute", f"SELECT pg_sleep(60) /* {marker} */"), ("commit",), timeout=1)
    assert status == 504
    wait_for(lambda: backends_running(marker) == 0, timeout=10)
    # the pool's only connection is back, and the insert was never committed
    assert pool_serves(server)
    assert labels(schema, table) == []
