#!/usr/bin/env python3
"""WebSocket echo round-trip load client for bench/run.py (run with the peers venv's python).

N connections (default 10) each send a text message (default 32 bytes), wait for its echo,
check it, and send the next one, until the duration is over. One round trip = one message
sent and the identical message received back. Prints one JSON line on stdout:

    {"round_trips": ..., "elapsed": ..., "rps": ..., "errors": ..., "cpu_pct": ..., ...}

`cpu_pct` is the client's own CPU use during the load (process time over wall time, start-up
and imports left out): near 100 means the client, not the server, was the limit.

Errors are: connections that could not be opened, connections that closed or failed
mid-run, echoes that did not match, and echoes that took longer than --timeout. A
connection that failed is reopened after a short pause (at most --max-reconnects times),
so one broken connection does not silence the rest of the run.

Uses the `websockets` library's asyncio client with compression off (so no server
negotiates permessage-deflate and every server is measured on plain frames) and its
keepalive pings off (a run is a few seconds; pings would only add noise).

`--probe` opens one connection, does one round trip and exits 0 on success: run.py uses it
to wait until a server is ready.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect


async def one_connection(url: str, message: str, deadline: float, timeout: float,
                         max_reconnects: int, stats: dict) -> None:
    reconnects = 0
    while time.monotonic() < deadline:
        try:
            async with connect(url, compression=None, ping_interval=None, open_timeout=timeout,
                               close_timeout=1, max_queue=4) as ws:
                while time.monotonic() < deadline:
                    await ws.send(message)
                    echo = await asyncio.wait_for(ws.recv(), timeout)
                    if echo != message:
                        stats["errors"] += 1
                        stats["mismatch"] += 1
                    else:
                        stats["round_trips"] += 1
            return
        except Exception as exc:  # any failure of a connection counts as an error
            stats["errors"] += 1
            kind = type(exc).__name__
            stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
            reconnects += 1
            if reconnects > max_reconnects:
                return
            await asyncio.sleep(0.1)


async def load(url: str, connections: int, size: int, duration: float, timeout: float,
               max_reconnects: int) -> dict:
    message = ("x" * size)[:size]
    stats = {"round_trips": 0, "errors": 0, "mismatch": 0, "kinds": {}}
    t0, cpu0 = time.monotonic(), time.process_time()
    deadline = t0 + duration
    tasks = [asyncio.create_task(one_connection(url, message, deadline, timeout, max_reconnects, stats))
             for _ in range(connections)]
    # Every task ends by itself (deadline, recv timeout, reconnect limit); the wait's timeout is
    # a last guard against a close handshake that hangs.
    done, pending = await asyncio.wait(tasks, timeout=duration + 3 * timeout + 5)
    for task in pending:
        task.cancel()
        stats["errors"] += 1
        stats["kinds"]["Hung"] = stats["kinds"].get("Hung", 0) + 1
    wall = time.monotonic() - t0
    elapsed = min(wall, duration)
    stats.update(elapsed=round(elapsed, 3), rps=round(stats["round_trips"] / elapsed, 1),
                 cpu_pct=round(100 * (time.process_time() - cpu0) / wall),
                 connections=connections, size=size)
    return stats


async def probe(url: str, timeout: float) -> None:
    async with connect(url, compression=None, ping_interval=None, open_timeout=timeout,
                       close_timeout=1) as ws:
        await ws.send("probe")
        echo = await asyncio.wait_for(ws.recv(), timeout)
        if echo != "probe":
            raise RuntimeError(f"echo mismatch: {echo!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="ws://127.0.0.1:PORT/path")
    parser.add_argument("-c", "--connections", type=int, default=10)
    parser.add_argument("-s", "--size", type=int, default=32, help="message size in bytes (text)")
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an echo or a handshake")
    parser.add_argument("--max-reconnects", type=int, default=20, help="per connection")
    parser.add_argument("--probe", action="store_true", help="one round trip; exit status says if it worked")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="event loop of the client (uvloop, when installed, leaves more headroom)")
    args = parser.parse_args(argv)
    run = asyncio.run
    if args.loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            run = uvloop.run
    if args.probe:
        try:
            run(asyncio.wait_for(probe(args.url, args.timeout), args.timeout + 2))
        except Exception as exc:  # the probe reports any failure
            print(f"probe failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        return 0
    stats = run(load(args.url, args.connections, args.size, args.duration, args.timeout,
                             args.max_reconnects))
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
