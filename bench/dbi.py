#!/usr/bin/env python3
"""The database plugin's two benchmarks, run in the development venv (skitai, skitai-dbi,
uvloop and httpx installed, `wrk` on PATH) against the local PostgreSQL:
`python bench/dbi.py [--duration 5] [--member postgres@127.0.0.1:5432/test] [--only
db-fanout,db-throughput] [--json results.json]`; `bench/run.py --only db-fanout,...` runs it too.
Each scenario prints its figures, then a PASS/MISS line per goal of issue 16.

- db-fanout: one request whose app starts ten `was.db` queries of `SELECT pg_sleep(0.05)` at
  once (`apps/skitai_db_app.py` /fanout). The median latency of 20 such requests, one after
  the other, against the median of 20 requests making one such query (/one): near 1x means the
  queries overlapped.
- db-throughput: requests/s of /was (one indexed SELECT through `was.db` per request, loaded by
  `wrk -t1 -c32`), against a bare uvloop loop running the same SELECTs on the same driver
  (`skitai_dbi.pgconn.PgConnection`, as many connections as was.db's pool: the limit), and
  against /psycopg2 (the same SELECT with plain psycopg2 in the app's 4 WSGI threads). For
  reference, the same server's requests/s without a query (/none) and with one
  `was.Thread(noop)` corequest (/thread): what any corequest costs, database or not.

The table (10,000 rows, primary key) is made in a schema of its own, dropped at the end. Nothing
is pinned: PostgreSQL, the server and the load share this machine's cores, so compare the ratios
of one run rather than absolute figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import uvloop
from gateway import median_latency, report, wrk_rate

from skitai.backends import parse_member
from skitai.testing import ServerProcess
from skitai_dbi.pgconn import PgConnection
from skitai_dbi.postgresql import dsn
from skitai_dbi.settings import POOL_SIZE

APPS = Path(__file__).resolve().parent / "apps"
ROWS = 10_000
SCENARIOS = ("db-fanout", "db-throughput")


def make_table(member: str) -> tuple[str, str]:
    """A schema of its own with the table: (schema, table)."""
    schema = f"bench_dbi_{uuid.uuid4().hex[:8]}"
    with psycopg2.connect(dsn(parse_member(member))) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        cursor.execute(f"CREATE TABLE {schema}.items (id int PRIMARY KEY, label text)")
        cursor.execute(f"INSERT INTO {schema}.items SELECT n, 'item ' || n FROM generate_series(1, %s) n", (ROWS,))
        cursor.execute(f"ANALYZE {schema}.items")
    return schema, f"{schema}.items"


def drop_schema(member: str, schema: str) -> None:
    with psycopg2.connect(dsn(parse_member(member))) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")


async def bare_loop(member: str, table: str, seconds: float) -> float:
    """SELECTs per second of POOL_SIZE connections, each running the query back to back."""
    connections = [await PgConnection.open(dsn(parse_member(member))) for _ in range(POOL_SIZE)]
    query = f"SELECT id, label FROM {table} WHERE id = %s"
    deadline = time.monotonic() + seconds
    count = 0

    async def worker(connection: PgConnection) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            await connection.execute(query, (random.randint(1, ROWS),))
            count += 1

    await asyncio.gather(*(worker(connection) for connection in connections))
    for connection in connections:
        connection.close()
    return count / seconds


def measure(scenarios: list[str], duration: float, member: str) -> dict:
    """The figures of the scenarios asked for, with their verdicts against the issue's goals:
    {scenario: {"figures": {...}, "summary": str, "targets": [(label, passed, detail)]}}."""
    results = {}
    schema, table = make_table(member)
    try:
        env = {"PG_MEMBER": member, "PG_TABLE": table, "PG_ROWS": str(ROWS)}
        with ServerProcess(str(APPS / "skitai_db_app.py"), env=env) as server:
            if "db-fanout" in scenarios:
                one = median_latency(server.url("/one"))
                fanout = median_latency(server.url("/fanout"))
                ratio = fanout / one
                results["db-fanout"] = {
                    "figures": {"one_query_ms": one * 1000, "ten_queries_ms": fanout * 1000, "ratio": ratio},
                    "summary": f"one query {one * 1000:.1f} ms, ten queries through was.db {fanout * 1000:.1f} ms "
                               f"({ratio:.2f}x one query)",
                    "targets": [("db-fanout: ten queries <= 1.5x one query", ratio <= 1.5, f"{ratio:.2f}x")]}
            if "db-throughput" in scenarios:
                uvloop.run(bare_loop(member, table, 1.0))  # warm-up
                bare = uvloop.run(bare_loop(member, table, duration))
                through_was = wrk_rate(server.url("/was"), duration)
                through_psycopg2 = wrk_rate(server.url("/psycopg2"), duration)
                bare_server = wrk_rate(server.url("/none"), duration)
                thread = wrk_rate(server.url("/thread"), duration)
                to_bare, to_psycopg2 = through_was / bare, through_was / through_psycopg2
                results["db-throughput"] = {
                    "figures": {"bare_loop": bare, "was_db": through_was, "psycopg2_4_threads": through_psycopg2,
                                "no_query": bare_server, "was_thread_noop": thread},
                    "summary": f"bare loop {bare:.0f} SELECTs/s, was.db {through_was:.0f} req/s ({to_bare:.2f}x the "
                               f"bare loop), plain psycopg2 at 4 threads {through_psycopg2:.0f} req/s (was.db is "
                               f"{to_psycopg2:.2f}x psycopg2); reference: no query {bare_server:.0f} req/s, one "
                               f"was.Thread(noop) corequest {thread:.0f} req/s",
                    "targets": [("db-throughput: was.db >= 0.7x the bare driver loop", to_bare >= 0.7,
                                 f"{to_bare:.2f}x"),
                                ("db-throughput: was.db ahead of plain psycopg2 at 4 threads", to_psycopg2 > 1.0,
                                 f"{to_psycopg2:.2f}x")]}
    finally:
        drop_schema(member, schema)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--member", default="postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated: {','.join(SCENARIOS)}")
    parser.add_argument("--json", type=Path, help="also write the results there (for bench/run.py)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: bash bench/setup.sh")
    results = measure([name for name in args.only.split(",") if name in SCENARIOS], args.duration, args.member)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
