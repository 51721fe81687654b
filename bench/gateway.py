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

Pinning, as bench/run.py does: the subject (the gateway's server, or the bare loop, which runs in
this process) on CPU 0, the upstream and wrk on CPU 1, so that neither the load nor the upstream
takes the subject's core, and each subject gets the same one core (a Python process is one core
of Python anyway). Other work on the machine still shares both cores, so `--rounds` (default 3)
repeats the whole set, one measurement after the other in each round, and the medians of the
rounds' figures and ratios count.

The ceiling: the gateway's loop thread must do, per request, both what the same server does for
a request with no call (`/none`) and what the bare loop does for one call, one after the other
(the GIL makes the process one core of Python), so no gateway on it can pass
1 / (1 / none + 1 / bare) requests/s, however cheap the hand-off between them. It is printed
beside the goal: a goal above the ceiling is out of reach on this machine by construction.
"""
from __future__ import annotations

import argparse
import os
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


SUBJECT_CPU, LOAD_CPU = 0, 1
PINNED = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset") is not None


def pin(pid: int, cpu: int) -> None:
    """Every thread of process `pid` and of its children (a Skitai master and its worker) on `cpu`."""
    if not PINNED:
        return
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            pids += [int(child) for child in children.read().split()]
    for process in pids:
        for thread in os.listdir(f"/proc/{process}/task"):
            os.sched_setaffinity(int(thread), {cpu})


def median_latency(url: str, count: int = 20) -> float:
    with httpx.Client(timeout=30) as client:
        client.get(url).raise_for_status()  # warm: the pool's connections are open
        times = []
        for _ in range(count):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def on_subject_cpu(measure, *args):
    """`measure(*args)` run in this process with it pinned to the subject's core."""
    if not PINNED:
        return measure(*args)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SUBJECT_CPU})
    try:
        return measure(*args)
    finally:
        os.sched_setaffinity(0, before)


def bare_rate(url: str, duration: float) -> float:
    def run() -> float:
        uvloop.run(with_aiohttp(url, IN_FLIGHT, 1.0))  # warm-up
        return uvloop.run(with_aiohttp(url, IN_FLIGHT, duration))
    return on_subject_cpu(run)


def wrk_rate(url: str, duration: float) -> float:
    wrk = ["taskset", "-c", str(LOAD_CPU), "wrk"] if PINNED else ["wrk"]
    subprocess.run([*wrk, "-t1", f"-c{IN_FLIGHT}", "-d1s", url], capture_output=True, timeout=60, check=True)
    output = subprocess.run([*wrk, "-t1", f"-c{IN_FLIGHT}", f"-d{duration:.0f}s", url], capture_output=True,
                            text=True, timeout=duration + 60, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} answers were errors:\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def ceiling(alone: float, bare: float) -> float:
    """The most requests/s a server answering `alone` req/s without the operation could answer
    with it, when one loop also does what a bare loop does at `bare` operations/s."""
    return 1 / (1 / alone + 1 / bare)


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def rounds(count: int, measure) -> list[dict[str, float]]:
    """`measure()` (a dict of figures) `count` times, each round's figures printed."""
    runs = []
    for number in range(count):
        runs.append(measure())
        print(f"  round {number + 1}: " + ", ".join(f"{name} {value:.2f}" if value < 100 else f"{name} {value:.0f}"
                                                   for name, value in runs[-1].items()), flush=True)
    return runs


def median_of(runs: list[dict[str, float]], name: str) -> float:
    return statistics.median(run[name] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: bash bench/setup.sh")
    with ServerProcess(str(APPS / "skitai_json_upstream.py")) as fast, \
            ServerProcess(str(APPS / "skitai_slow_upstream.py")) as slow:
        pin(fast.process.pid, LOAD_CPU)
        upstreams = {"FAST_UPSTREAM": f"127.0.0.1:{fast.port}", "SLOW_UPSTREAM": f"127.0.0.1:{slow.port}"}
        with ServerProcess(str(APPS / "skitai_gateway_app.py"), env=upstreams) as gateway:
            pin(gateway.process.pid, SUBJECT_CPU)
            one = median_latency(slow.url("/"))
            fanout = median_latency(gateway.url("/fanout"))
            print(f"gateway-fanout: one call {one * 1000:.1f} ms, 20 calls through was.get {fanout * 1000:.1f} ms "
                  f"({fanout / one:.2f}x one call)")

            def measure() -> dict[str, float]:
                bare = bare_rate(fast.url("/"), args.duration)
                through_was = wrk_rate(gateway.url("/was"), args.duration)
                through_requests = wrk_rate(gateway.url("/requests"), args.duration)
                alone = wrk_rate(gateway.url("/none"), args.duration)
                return {"bare": bare, "was": through_was, "requests": through_requests, "none": alone,
                        "was/bare": through_was / bare, "was/requests": through_was / through_requests,
                        "ceiling/bare": ceiling(alone, bare) / bare}

            runs = rounds(args.rounds, measure)
    was_bare, was_requests, top = (median_of(runs, name) for name in ("was/bare", "was/requests", "ceiling/bare"))
    print(f"gateway-throughput (medians of {len(runs)} rounds): bare aiohttp loop {median_of(runs, 'bare'):.0f} "
          f"req/s, was.get {median_of(runs, 'was'):.0f} req/s ({was_bare:.2f}x the bare loop), requests.Session "
          f"{median_of(runs, 'requests'):.0f} req/s (was.get is {was_requests:.2f}x requests)")
    print(f"ceiling: the server with no call {median_of(runs, 'none'):.0f} req/s, so at most {top:.2f}x the bare loop")
    print(f"goal was.get >= 0.7x the bare loop: {verdict(was_bare >= 0.7)} ({was_bare:.2f}x; ceiling {top:.2f}x)")
    print(f"goal was.get >= 3x requests.Session: {verdict(was_requests >= 3)} ({was_requests:.2f}x)")


if __name__ == "__main__":
    main()
