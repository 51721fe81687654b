#!/usr/bin/env python3
"""The database plugin's two benchmarks, run in the development venv (skitai, skitai-dbi,
uvloop and httpx installed, `wrk` on PATH) against the local PostgreSQL:
`python bench/dbi.py [--duration 5] [--rounds 3] [--member postgres@127.0.0.1:5432/test] [--only
db-fanout,db-throughput] [--json results.json]`; `bench/run.py --only db-fanout,...` runs it too
(its `--runs` as `--rounds`). Each scenario prints its figures, then PASS/MISS lines per goal of
issue 16.

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

The table (10,000 rows, primary key) is made in a schema of its own, dropped at the end. The
subject (the server, or the bare loop in this process) runs on CPU 0 and wrk on CPU 1, as in
bench/gateway.py; PostgreSQL is the system's and is not pinned. `--rounds` (default 3) repeats
the set; the medians count. The ceiling printed beside the goals is the one bench/gateway.py
explains: the server's own work per request (/none) and the bare loop's per SELECT, added on
one core. Each figure also comes with the subject's CPU time per request, as in bench/gateway.py
(PostgreSQL's own is in none of them).
"""
from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

import psycopg2
import uvloop
from gateway import (
    SUBJECT_CPU,
    ceiling,
    fanout_result,
    finish,
    goal,
    medians,
    on_subject_cpu,
    parse_args,
    pin,
    rounds,
    wrk_rate,
)

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


def measure(scenarios: list[str], duration: float, count: int, member: str) -> dict:
    """The figures of the scenarios asked for, with their verdicts against the issue's goals:
    {scenario: {"figures": {...}, "summary": str, "targets": [(label, passed, detail)]}};
    db-throughput's figures are the medians of `count` rounds, its "rounds" each round's."""
    results = {}
    schema, table = make_table(member)
    try:
        env = {"PG_MEMBER": member, "PG_TABLE": table, "PG_ROWS": str(ROWS)}
        with ServerProcess(str(APPS / "skitai_db_app.py"), env=env) as server:
            pid = server.process.pid
            pin(pid, SUBJECT_CPU)
            if "db-fanout" in scenarios:
                results["db-fanout"] = fanout_result("db-fanout", server.url("/one"), server.url("/fanout"),
                                                     "one query", "ten queries through was.db")
            if "db-throughput" in scenarios:
                def bare_rate() -> tuple[float, float]:
                    uvloop.run(bare_loop(member, table, 1.0))  # warm-up
                    started = time.process_time()
                    rate = uvloop.run(bare_loop(member, table, duration))
                    return rate, (time.process_time() - started) / (rate * duration) * 1e6

                def measure_round() -> dict[str, float]:
                    bare, bare_us = on_subject_cpu(bare_rate)
                    through_was, was_us = wrk_rate(server.url("/was"), duration, pid)
                    through_psycopg2, psycopg2_us = wrk_rate(server.url("/psycopg2"), duration, pid)
                    alone, alone_us = wrk_rate(server.url("/none"), duration, pid)
                    thread, thread_us = wrk_rate(server.url("/thread"), duration, pid)
                    return {"bare": bare, "was": through_was, "psycopg2": through_psycopg2, "none": alone,
                            "thread": thread, "was/bare": through_was / bare,
                            "was/psycopg2": through_was / through_psycopg2,
                            "ceiling/bare": ceiling(alone, bare) / bare,
                            "us bare": bare_us, "us was": was_us, "us psycopg2": psycopg2_us, "us none": alone_us,
                            "us thread": thread_us, "cpu was/bare": bare_us / was_us,
                            "cpu was/psycopg2": psycopg2_us / was_us,
                            "cpu ceiling/bare": bare_us / (alone_us + bare_us)}

                results["db-throughput"] = throughput_result(rounds(count, measure_round))
    finally:
        drop_schema(member, schema)
    return results


def throughput_result(runs: list[dict[str, float]]) -> dict:
    figures = medians(runs)
    summary = (
        f"(medians of {len(runs)} rounds) bare loop {figures['bare']:.0f} SELECTs/s, was.db {figures['was']:.0f} "
        f"req/s ({figures['was/bare']:.2f}x the bare loop), plain psycopg2 at 4 threads {figures['psycopg2']:.0f} "
        f"req/s (was.db is {figures['was/psycopg2']:.2f}x psycopg2); reference: no query {figures['none']:.0f} "
        f"req/s, one was.Thread(noop) corequest {figures['thread']:.0f} req/s\n"
        f"  per CPU (microseconds of the subject's CPU per request): bare loop {figures['us bare']:.0f}, was.db "
        f"{figures['us was']:.0f}, psycopg2 {figures['us psycopg2']:.0f}, no query {figures['us none']:.0f}, "
        f"was.Thread {figures['us thread']:.0f}")
    targets = [*goal("db-throughput: was.db >= 0.7x the bare driver loop", figures["was/bare"],
                     figures["cpu was/bare"], 0.7, figures["ceiling/bare"], figures["cpu ceiling/bare"]),
               *goal("db-throughput: was.db ahead of plain psycopg2 at 4 threads", figures["was/psycopg2"],
                     figures["cpu was/psycopg2"], 1.0)]
    return {"figures": figures, "rounds": runs, "summary": summary, "targets": targets}


def main() -> None:
    args = parse_args(SCENARIOS, member="postgres@127.0.0.1:5432/test")
    finish(measure(args.only, args.duration, args.rounds, args.member), args.json)


if __name__ == "__main__":
    main()
