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
rounds' figures and ratios count. Since that other work takes a varying share of the subject's
core, each figure also comes with the subject's CPU time per request (the server process tree's,
or this process's for the bare loop; the upstream's is in neither), and the goals are judged both
on the req/s ratio (the issue's measure) and on the ratio of requests per CPU second.

The ceiling: the gateway's loop thread must do, per request, both what the same server does for
a request with no call (`/none`) and what the bare loop does for one call, one after the other
(the GIL makes the process one core of Python), so no gateway on it can pass
1 / (1 / none + 1 / bare) requests/s (per CPU: bare / (none + bare) of the bare loop's rate),
however cheap the hand-off between them. It is printed beside the goal: a goal above the ceiling
is out of reach on this machine by construction.
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


def tree_cpu(pid: int) -> float:
    """CPU seconds (user and system) used so far by process `pid` and its children."""
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            pids += [int(child) for child in children.read().split()]
    total = 0
    for process in pids:
        with open(f"/proc/{process}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def bare_rate(url: str, duration: float) -> tuple[float, float]:
    """(calls/s, CPU microseconds per call) of the bare aiohttp loop, run here."""
    def run() -> tuple[float, float]:
        uvloop.run(with_aiohttp(url, IN_FLIGHT, 1.0))  # warm-up
        started = time.process_time()
        rate = uvloop.run(with_aiohttp(url, IN_FLIGHT, duration))
        return rate, (time.process_time() - started) / (rate * duration) * 1e6
    return on_subject_cpu(run)


def wrk_rate(url: str, duration: float, pid: int) -> tuple[float, float]:
    """(requests/s, CPU microseconds per request of the server `pid`) under wrk."""
    wrk = ["taskset", "-c", str(LOAD_CPU), "wrk"] if PINNED else ["wrk"]
    subprocess.run([*wrk, "-t1", f"-c{IN_FLIGHT}", "-d1s", url], capture_output=True, timeout=60, check=True)
    cpu = tree_cpu(pid)
    output = subprocess.run([*wrk, "-t1", f"-c{IN_FLIGHT}", f"-d{duration:.0f}s", url], capture_output=True,
                            text=True, timeout=duration + 60, check=True).stdout
    cpu = tree_cpu(pid) - cpu
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} answers were errors:\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), cpu / requests * 1e6


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
        print(f"  round {number + 1}: " + ", ".join(f"{name} {value:.2f}" if value < 10 else f"{name} {value:.0f}"
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
                pid = gateway.process.pid
                bare, bare_us = bare_rate(fast.url("/"), args.duration)
                through_was, was_us = wrk_rate(gateway.url("/was"), args.duration, pid)
                through_requests, requests_us = wrk_rate(gateway.url("/requests"), args.duration, pid)
                alone, alone_us = wrk_rate(gateway.url("/none"), args.duration, pid)
                return {"bare": bare, "was": through_was, "requests": through_requests, "none": alone,
                        "was/bare": through_was / bare, "was/requests": through_was / through_requests,
                        "ceiling/bare": ceiling(alone, bare) / bare,
                        "us bare": bare_us, "us was": was_us, "us requests": requests_us, "us none": alone_us,
                        "cpu was/bare": bare_us / was_us, "cpu was/requests": requests_us / was_us,
                        "cpu ceiling/bare": bare_us / (alone_us + bare_us)}

            runs = rounds(args.rounds, measure)
    figures = {name: median_of(runs, name) for name in runs[0]}
    print(f"gateway-throughput (medians of {len(runs)} rounds): bare aiohttp loop {figures['bare']:.0f} req/s, "
          f"was.get {figures['was']:.0f} req/s ({figures['was/bare']:.2f}x the bare loop), requests.Session "
          f"{figures['requests']:.0f} req/s (was.get is {figures['was/requests']:.2f}x requests); the server with "
          f"no call {figures['none']:.0f} req/s, so a ceiling of {figures['ceiling/bare']:.2f}x the bare loop")
    print(f"per CPU (microseconds of the subject's CPU per request): bare loop {figures['us bare']:.0f}, was.get "
          f"{figures['us was']:.0f}, requests.Session {figures['us requests']:.0f}, no call {figures['us none']:.0f}: "
          f"was.get does {figures['cpu was/bare']:.2f}x the bare loop's work per CPU second (ceiling "
          f"{figures['cpu ceiling/bare']:.2f}x) and {figures['cpu was/requests']:.2f}x requests'")
    report_goal("was.get >= 0.7x the bare loop", figures["was/bare"], figures["cpu was/bare"], 0.7,
                figures["ceiling/bare"], figures["cpu ceiling/bare"])
    report_goal("was.get >= 3x requests.Session", figures["was/requests"], figures["cpu was/requests"], 3)


def report_goal(goal: str, ratio: float, per_cpu: float, target: float, top: float | None = None,
                per_cpu_top: float | None = None) -> None:
    """The verdict on the req/s ratio (the issue's measure) and, because other work on this
    shared machine takes a varying share of the subjects' core, on the ratio of work per CPU
    second as well."""
    ceilings = "" if top is None else f"; ceilings {top:.2f}x and {per_cpu_top:.2f}x"
    print(f"goal {goal}: {verdict(ratio >= target)} by req/s ({ratio:.2f}x), {verdict(per_cpu >= target)} per CPU "
          f"second ({per_cpu:.2f}x){ceilings}")


if __name__ == "__main__":
    main()
