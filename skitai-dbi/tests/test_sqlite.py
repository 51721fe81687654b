"""was.db and was.transaction on SQLite in a real server: files relative to the script's
folder, write-ahead logging, waiting for a lock held elsewhere, statements off the event loop
and interrupted when their corequest times out, the same errors and transactions as PostgreSQL."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from dbserver import call, db_server

from skitai.backends import Member
from skitai_dbi.sqliteconn import SqliteConnection

SLOW = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) AS n FROM c"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("sqlite-app")


@pytest.fixture(scope="module")
def server(folder):
    (folder / "data").mkdir()
    with db_server([["@lite", "sqlite3", "data/lite.db"]], pool_size=3, folder=folder) as started:
        yield started


def sql(server, statement, params=None, **options):
    return call(server, "/sql", {"alias": "@lite", "sql": statement, "params": params, **options})


def test_the_file_is_relative_to_the_scripts_folder_and_in_wal_mode(server, folder):
    assert sql(server, "PRAGMA journal_mode", how="one") == (200, {"journal_mode": "wal"})
    assert (folder / "data" / "lite.db").is_file()


def test_rows_parameters_one_and_409(server):
    assert sql(server, "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT UNIQUE)", how="commit")[0] == 200
    assert sql(server, "INSERT INTO pets (name) VALUES (?) RETURNING id", ["Rex"], how="one") == (200, {"id": 1})
    assert sql(server, "SELECT name FROM pets", how="attributes", columns=["name"]) == (200, [["Rex"]])
    status, body = sql(server, "INSERT INTO pets (name) VALUES (?)", ["Rex"], how="commit")
    assert status == 409 and "UNIQUE constraint failed" in body["error"]
    assert sql(server, "INSERT INTO pets (id, name) VALUES (1, 'Tom')", how="commit")[0] == 409
    assert sql(server, "SELECT name FROM pets WHERE id = ?", [9], how="one")[0] == 410
    [result] = sql(server, "SELECT * FROM nowhere", how="dispatch")[1]
    assert (result["status"], result["reason"]) == (1, "no such table: nowhere")


def test_a_lock_held_elsewhere_is_waited_for(server, folder):
    sql(server, "CREATE TABLE IF NOT EXISTS log (line TEXT)", how="commit")
    other = sqlite3.connect(folder / "data" / "lite.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    other.execute("INSERT INTO log VALUES ('other')")
    release = threading.Timer(1.0, other.execute, ["COMMIT"])
    release.start()
    try:
        assert sql(server, "INSERT INTO log VALUES ('ours')", how="commit") == (200, "committed")
    finally:
        release.join()
        other.close()
    assert sql(server, "SELECT line FROM log ORDER BY rowid", how="fetch")[1] == [{"line": "other"}, {"line": "ours"}]


def test_statements_run_off_the_loop_and_are_interrupted_on_timeout(server):
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(sql, server, SLOW, how="one", timeout=3)
        # while the slow statement runs, the worker's loop serves other statements
        assert sql(server, "SELECT 1 AS one", how="one") == (200, {"one": 1})
        assert not slow.done()
        assert slow.result(30)[0] == 504
    # its connection was interrupted and serves again, and so does the whole pool
    for _ in range(4):
        assert sql(server, "SELECT 2 AS two", how="one") == (200, {"two": 2})


def test_transactions(server):
    sql(server, "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, label TEXT)", how="commit")
    steps = [["execute", "INSERT INTO items VALUES (?, ?)", [1, "a"]], ["rollback"],
             ["execute", "INSERT INTO items VALUES (?, ?)", [2, "b"]], ["execute", "SELECT label FROM items"],
             ["fetchone"], ["commit"]]
    assert call(server, "/transaction", {"alias": "@lite", "steps": steps}) == (200, [{"label": "b"}])
    forgotten = [["execute", "INSERT INTO items VALUES (?, ?)", [3, "lost"]]]
    assert call(server, "/transaction", {"alias": "@lite", "steps": forgotten, "bare": True}) == (200, [])
    assert sql(server, "SELECT label FROM items ORDER BY id")[1] == [{"label": "b"}]


def test_cancel_interrupts_the_running_statement(tmp_path):
    """What a timed-out corequest does to its SQLite connection: the statement stops with
    "interrupted" rather than running on in the connection's thread."""
    async def scenario():
        connection = await SqliteConnection.open(Member(path=str(tmp_path / "x.db")))
        try:
            statement_runs = threading.Event()  # SQLite calls the handler while a statement runs
            connection.raw.set_progress_handler(statement_runs.set, 1000)
            running = asyncio.ensure_future(connection.execute(SLOW))
            assert await asyncio.to_thread(statement_runs.wait, 30)  # an interrupt before it would be lost
            await asyncio.wait_for(connection.cancel(), 30)
            with pytest.raises(sqlite3.OperationalError, match="interrupted"):
                await running
            assert await connection.execute("SELECT 3 AS three") == ([{"three": 3}], -1)
        finally:
            connection.close()

    asyncio.run(scenario())
