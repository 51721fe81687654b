#!/usr/bin/env python3
"""Which upstream client the reverse proxy is built on, measured: a bare uvloop loop of each
candidate making keep-alive `GET /hello` requests, 32 in flight, against a Skitai upstream
(`apps/skitai_json_upstream.py`): aiohttp's `ClientSession` (what the corequests use), and the
proxy's own `skitai_gateway.upstreamconn` (httptools on an asyncio protocol, the way the proxy
uses it: write the head, read the head, read the body). Run in the development venv:
`python bench/proxy_clients.py [--duration 4]`.
"""
from __future__ import annotations

import argparse

import aiohttp
import uvloop
from gateway_clients import measure, pinned_upstream

from skitai_gateway.upstreamconn import Origin, UpstreamPool

IN_FLIGHT = 32


async def with_aiohttp(url: str, concurrency: int, duration: float) -> float:
    connector = aiohttp.TCPConnector(limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        async def call():
            async with session.get(url) as response:
                async for _ in response.content.iter_any():  # raw pieces, as a proxy relays them
                    pass
        return await measure(call, concurrency, duration)


async def with_upstreamconn(url: str, concurrency: int, duration: float) -> float:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    pool = UpstreamPool(keep_alive=30)
    origin = Origin("http", "127.0.0.1", port)
    head = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    async def call():
        conn = await pool.acquire(origin)
        conn.begin("GET")
        conn.write(head)
        await conn.read_head(10)
        while await conn.read_body(10):
            pass
        pool.release(conn)
    try:
        return await measure(call, concurrency, duration)
    finally:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    with pinned_upstream() as upstream:
        for _ in range(2):
            for name, client in (("aiohttp", with_aiohttp), ("upstreamconn", with_upstreamconn)):
                rate = uvloop.run(client(upstream.url("/"), IN_FLIGHT, args.duration))
                print(f"{name:12} {IN_FLIGHT} in flight: {rate:8.0f} requests/s", flush=True)


if __name__ == "__main__":
    main()
