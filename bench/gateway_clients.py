#!/usr/bin/env python3
"""Which asyncio HTTP client the gateway plugin (`was.get` ...) is built on: aiohttp or httpx.

A bare asyncio loop (uvloop) of each client makes keep-alive GETs of a small JSON document
against a local Skitai upstream (`apps/skitai_json_upstream.py`), with 1, 8 and 32 calls in
flight, for `--duration` seconds each; the upstream is pinned to CPU 0 and this process to
CPU 1 (when there are two). Prints requests/s per client and concurrency. Runs in the
development venv (skitai, aiohttp, httpx and uvloop installed): `python bench/gateway_clients.py`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import uvloop

from skitai.testing import ServerProcess

UPSTREAM = Path(__file__).resolve().parent / "apps" / "skitai_json_upstream.py"


@contextmanager
def pinned_upstream():
    """The JSON upstream started, pinned to CPU 0 and this process to CPU 1 (when there are
    two), so client and server do not take turns on one core."""
    with ServerProcess(str(UPSTREAM)) as upstream:
        if len(os.sched_getaffinity(0)) >= 2:
            os.sched_setaffinity(upstream.process.pid, {0})
            os.sched_setaffinity(0, {1})
        yield upstream


async def measure(call, concurrency: int, duration: float) -> float:
    done = 0
    end = time.monotonic() + duration

    async def worker():
        nonlocal done
        while time.monotonic() < end:
            await call()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / duration


async def with_aiohttp(url: str, concurrency: int, duration: float) -> float:
    connector = aiohttp.TCPConnector(limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def call():
            async with session.get(url) as response:
                await response.json()
        return await measure(call, concurrency, duration)


async def with_httpx(url: str, concurrency: int, duration: float) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        async def call():
            (await client.get(url)).json()
        return await measure(call, concurrency, duration)


async def with_httpx_h2c(url: str, concurrency: int, duration: float) -> float:
    """HTTP/2 with prior knowledge: the calls are streams of one connection."""
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        async def call():
            (await client.get(url)).json()
        return await measure(call, concurrency, duration)


CLIENTS = (("aiohttp", with_aiohttp), ("httpx", with_httpx), ("httpx-h2c", with_httpx_h2c))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    with pinned_upstream() as upstream:
        for concurrency in (1, 8, 32):
            for name, client in CLIENTS:
                rate = uvloop.run(client(upstream.url("/"), concurrency, args.duration))
                print(f"{name:8} {concurrency:3} in flight: {rate:8.0f} requests/s", flush=True)


if __name__ == "__main__":
    main()
