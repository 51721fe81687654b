#!/usr/bin/env python3
"""The gateway plugin's two benchmarks, run in the development venv (skitai, skitai-gateway,
aiohttp, uvloop and requests installed): `python bench/gateway.py [--duration 5]`.

- gateway-fanout: one request whose app makes 20 `was.get` calls to an upstream that answers
  each after 50 ms (`apps/skitai_slow_upstream.py`). The median latency of 20 such requests, one
  after the other, against the median of 20 direct calls: near 1x means the calls overlapped.
- gateway-throughput: requests/s of `/was` (one `was.get` per request) through the gateway
  (`apps/skitai_gateway_app.py`), against a bare uvloop loop of aiohttp calling the upstream
  itself (the client library's limit) and against `/requests` (`requests.Session` in the WSGI
  thread). The load on the gateway is `wrk -t1 -c32` (installed by bench/setup.sh), so that a
  Python load client does not take the CPU the gateway needs; `--duration` seconds each.

Nothing is pinned: the upstream, the gateway and the load share this machine's cores, so compare
the ratios of one run rather than absolute figures.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import uvloop
from gateway_clients import with_aiohttp

from skitai.testing import ServerProcess

APPS = Path(__file__).resolve().parent / "apps"
IN_FLIGHT = 32


def median_latency(url: str, count: int = 20) -> float:
    with httpx.Client(timeout=30) as client:
        client.get(url).raise_for_status()  # warm: the pool's connections are open
        times = []
        for _ in range(count):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def bare_rate(url: str, duration: float) -> float:
    uvloop.run(with_aiohttp(url, IN_FLIGHT, 1.0))  # warm-up
    return uvloop.run(with_aiohttp(url, IN_FLIGHT, duration))


def wrk_rate(url: str, duration: float) -> float:
    subprocess.run(["wrk", "-t1", f"-c{IN_FLIGHT}", "-d1s", url], capture_output=True, timeout=60, check=True)
    output = subprocess.run(["wrk", "-t1", f"-c{IN_FLIGHT}", f"-d{duration:.0f}s", url], capture_output=True,
                            text=True, timeout=duration + 60, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} answers were errors:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: bash bench/setup.sh")
    with ServerProcess(str(APPS / "skitai_json_upstream.py")) as fast, \
            ServerProcess(str(APPS / "skitai_slow_upstream.py")) as slow:
        upstreams = {"FAST_UPSTREAM": f"127.0.0.1:{fast.port}", "SLOW_UPSTREAM": f"127.0.0.1:{slow.port}"}
        with ServerProcess(str(APPS / "skitai_gateway_app.py"), env=upstreams) as gateway:
            one = median_latency(slow.url("/"))
            fanout = median_latency(gateway.url("/fanout"))
            print(f"gateway-fanout: one call {one * 1000:.1f} ms, 20 calls through was.get {fanout * 1000:.1f} ms "
                  f"({fanout / one:.2f}x one call)")
            bare = bare_rate(fast.url("/"), args.duration)
            through_was = wrk_rate(gateway.url("/was"), args.duration)
            through_requests = wrk_rate(gateway.url("/requests"), args.duration)
            print(f"gateway-throughput: bare aiohttp loop {bare:.0f} req/s, was.get {through_was:.0f} req/s "
                  f"({through_was / bare:.2f}x the bare loop), requests.Session {through_requests:.0f} req/s "
                  f"(was.get is {through_was / through_requests:.2f}x requests)")


if __name__ == "__main__":
    main()
