#!/usr/bin/env python3
"""The gateway plugin's two benchmarks, run in the development venv (skitai, skitai-gateway,
aiohttp, uvloop and requests installed): `python bench/gateway.py [--duration 5] [--only
gateway-fanout,gateway-throughput] [--json results.json]`; `bench/run.py --only gateway-fanout,...`
runs it too. Each scenario prints its figures, then a PASS/MISS line per goal of issue 15.

- gateway-fanout: one request whose app makes 20 `was.get` calls to an upstream that answers
  each after 50 ms (`apps/skitai_slow_upstream.py`). The median latency of 20 such requests, one
  after the other, against the median of 20 direct calls: near 1x means the calls overlapped.
- gateway-throughput: requests/s of `/was` (one `was.get` per request) through the gateway
  (`apps/skitai_gateway_app.py`), against a bare uvloop loop of aiohttp calling the upstream
  itself (the client library's limit) and against `/requests` (`requests.Session` in the WSGI
  thread); and `/was-h2`, the same call to the same upstream over HTTP/2 (an "h2c" alias), as a
  ratio to `/was`. The load on the gateway is `wrk -t1 -c32` (installed by bench/setup.sh), so that a
  Python load client does not take the CPU the gateway needs; `--duration` seconds each.

Nothing is pinned: the upstream, the gateway and the load share this machine's cores, so compare
the ratios of one run rather than absolute figures.
"""
from __future__ import annotations

import argparse
import json
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
SCENARIOS = ("gateway-fanout", "gateway-throughput")


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


def measure(scenarios: list[str], duration: float) -> dict:
    """The figures of the scenarios asked for, with their verdicts against the issue's goals:
    {scenario: {"figures": {...}, "summary": str, "targets": [(label, passed, detail)]}}."""
    results = {}
    with ServerProcess(str(APPS / "skitai_json_upstream.py")) as fast, \
            ServerProcess(str(APPS / "skitai_slow_upstream.py")) as slow:
        upstreams = {"FAST_UPSTREAM": f"127.0.0.1:{fast.port}", "SLOW_UPSTREAM": f"127.0.0.1:{slow.port}"}
        with ServerProcess(str(APPS / "skitai_gateway_app.py"), env=upstreams) as gateway:
            if "gateway-fanout" in scenarios:
                one = median_latency(slow.url("/"))
                fanout = median_latency(gateway.url("/fanout"))
                ratio = fanout / one
                results["gateway-fanout"] = {
                    "figures": {"one_call_ms": one * 1000, "twenty_calls_ms": fanout * 1000, "ratio": ratio},
                    "summary": f"one call {one * 1000:.1f} ms, 20 calls through was.get {fanout * 1000:.1f} ms "
                               f"({ratio:.2f}x one call)",
                    "targets": [("gateway-fanout: 20 calls <= 1.5x one call", ratio <= 1.5, f"{ratio:.2f}x")]}
            if "gateway-throughput" in scenarios:
                bare = bare_rate(fast.url("/"), duration)
                through_was = wrk_rate(gateway.url("/was"), duration)
                through_h2 = wrk_rate(gateway.url("/was-h2"), duration)
                through_requests = wrk_rate(gateway.url("/requests"), duration)
                to_bare, to_requests = through_was / bare, through_was / through_requests
                results["gateway-throughput"] = {
                    "figures": {"bare_aiohttp": bare, "was_get": through_was, "was_get_h2c": through_h2,
                                "requests_session": through_requests},
                    "summary": f"bare aiohttp loop {bare:.0f} req/s, was.get {through_was:.0f} req/s ({to_bare:.2f}x "
                               f"the bare loop), requests.Session {through_requests:.0f} req/s (was.get is "
                               f"{to_requests:.2f}x requests); was.get to an h2c member {through_h2:.0f} req/s "
                               f"({through_h2 / through_was:.2f}x was.get over HTTP/1.1)",
                    "targets": [("gateway-throughput: was.get >= 0.7x the bare aiohttp loop", to_bare >= 0.7,
                                 f"{to_bare:.2f}x"),
                                ("gateway-throughput: was.get >= 3x requests.Session", to_requests >= 3.0,
                                 f"{to_requests:.2f}x")]}
    return results


def report(results: dict) -> None:
    for name, result in results.items():
        print(f"{name}: {result['summary']}")
    for result in results.values():
        for label, passed, detail in result["targets"]:
            print(f"{'PASS' if passed else 'MISS'}  {label}: {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated: {','.join(SCENARIOS)}")
    parser.add_argument("--json", type=Path, help="also write the results there (for bench/run.py)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: bash bench/setup.sh")
    results = measure([name for name in args.only.split(",") if name in SCENARIOS], args.duration)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
