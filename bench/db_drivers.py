"""Which PostgreSQL driver skitai-dbi runs on: psycopg2's asynchronous connections driven by
the loop (skitai_dbi.pgconn.PgConnection, what was.db uses) against psycopg 3's asyncio API,
on one uvloop loop, `--connections` connections each running small SELECTs back to back.

    pip install -e skitai-core -e skitai-dbi "psycopg[binary]>=3.2"
    python bench/db_drivers.py [--dsn "host=127.0.0.1 user=postgres dbname=test"] [--seconds 5]

Prints queries per second for each driver (one run each, same loop, same server)."""
from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

QUERY = "SELECT %s::int AS n, 'row' AS label"


async def psycopg2_loop(dsn: str, connections: int, seconds: float) -> int:
    from skitai_dbi.pgconn import PgConnection

    conns = [await PgConnection.open(dsn) for _ in range(connections)]
    deadline = time.monotonic() + seconds
    count = 0

    async def worker(connection) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            await connection.execute(QUERY, (count,))
            count += 1

    await asyncio.gather(*(worker(connection) for connection in conns))
    for connection in conns:
        connection.close()
    return count


async def psycopg3_loop(dsn: str, connections: int, seconds: float) -> int:
    import psycopg
    from psycopg.rows import dict_row

    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row)
             for _ in range(connections)]
    deadline = time.monotonic() + seconds
    count = 0

    async def worker(connection) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            async with connection.cursor() as cursor:
                await cursor.execute(QUERY, (count,))
                await cursor.fetchall()
            count += 1

    await asyncio.gather(*(worker(connection) for connection in conns))
    for connection in conns:
        await connection.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=test")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    for name, run in (("psycopg2 async (skitai-dbi)", psycopg2_loop), ("psycopg 3 asyncio", psycopg3_loop)):
        count = uvloop.run(run(args.dsn, args.connections, args.seconds))
        print(f"{name:30} {count / args.seconds:10.0f} queries/s")


if __name__ == "__main__":
    main()
