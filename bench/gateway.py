#!/usr/bin/env python3
"""The gateway plugin's two benchmarks, run in the development venv (skitai, skitai-gateway,
aiohttp, uvloop and requests installed): `python bench/gateway.py [--duration 5] [--rounds 3]
[--only gateway-fanout,gateway-throughput] [--json results.json]`; `bench/run.py --only
gateway-fanout,...` runs it too (its `--runs` as `--rounds`). Each scenario prints its figures,
then PASS/MISS lines per goal of issue 15.

- gateway-fanout: one request whose app makes 20 `was.get` calls to an upstream that answers
  each after 50 ms (`apps/skitai_slow_upstream.py`). The median latency of 20 such requests, one
  after the other, against the median of 20 direct calls: near 1x means the calls overlapped.
- gateway-throughput: requests/s of `/was` (one `was.get` per request) through the gateway
  (`apps/skitai_gateway_app.py`), against a bare uvloop loop of aiohttp calling the upstream
  itself (the client library's limit) and against `/requests` (`requests.Session` in the WSGI
  thread); and `/was-h2`, the same call to the same upstream over HTTP/2 (an "h2c" alias), as a
  ratio to `/was`. The load on the gateway is `wrk -t1 -c32` (installed by bench/setup.sh), so
  that a Python load client does not take the CPU the gateway needs; `--duration` seconds each.

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
import json
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
SCENARIOS = ("gateway-fanout", "gateway-throughput")

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


def fanout_result(scenario: str, one_url: str, many_url: str, one: str, many: str) -> dict:
    """A fan-out scenario's result: the median latency of `many_url` (whose app makes `many`
    at once) against that of `one_url` (making `one`); the goal: within 1.5x."""
    alone, together = median_latency(one_url), median_latency(many_url)
    ratio = together / alone
    return {"figures": {"one_ms": alone * 1000, "many_ms": together * 1000, "ratio": ratio},
            "summary": f"{one} {alone * 1000:.1f} ms, {many} {together * 1000:.1f} ms ({ratio:.2f}x {one})",
            "targets": [(f"{scenario}: {many} <= 1.5x {one}", ratio <= 1.5, f"{ratio:.2f}x")]}


def rounds(count: int, measure) -> list[dict[str, float]]:
    """`measure()` (a dict of figures) `count` times, each round's figures printed."""
    runs = []
    for number in range(count):
        runs.append(measure())
        print(f"  round {number + 1}: " + ", ".join(f"{name} {value:.2f}" if value < 10 else f"{name} {value:.0f}"
                                                   for name, value in runs[-1].items()), flush=True)
    return runs


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds (ratios included: the median of the rounds' ratios)."""
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def goal(label: str, ratio: float, per_cpu: float, target: float, top: float | None = None,
         per_cpu_top: float | None = None) -> list[tuple[str, bool, str]]:
    """The verdicts on a goal: by the req/s ratio (the issue's measure) and, because other work
    on this shared machine takes a varying share of the subjects' core, by the ratio of work per
    CPU second as well; the ceilings, where given, beside them."""
    return [(f"{label}, by req/s", ratio >= target,
             f"{ratio:.2f}x" + ("" if top is None else f" (ceiling {top:.2f}x)")),
            (f"{label}, per CPU second", per_cpu >= target,
             f"{per_cpu:.2f}x" + ("" if per_cpu_top is None else f" (ceiling {per_cpu_top:.2f}x)"))]


def measure(scenarios: list[str], duration: float, count: int) -> dict:
    """The figures of the scenarios asked for, with their verdicts against the issue's goals:
    {scenario: {"figures": {...}, "summary": str, "targets": [(label, passed, detail)]}};
    gateway-throughput's figures are the medians of `count` rounds, its "rounds" each round's."""
    results = {}
    with ServerProcess(str(APPS / "skitai_json_upstream.py")) as fast, \
            ServerProcess(str(APPS / "skitai_slow_upstream.py")) as slow:
        pin(fast.process.pid, LOAD_CPU)
        upstreams = {"FAST_UPSTREAM": f"127.0.0.1:{fast.port}", "SLOW_UPSTREAM": f"127.0.0.1:{slow.port}"}
        with ServerProcess(str(APPS / "skitai_gateway_app.py"), env=upstreams) as gateway:
            pid = gateway.process.pid
            pin(pid, SUBJECT_CPU)
            if "gateway-fanout" in scenarios:
                results["gateway-fanout"] = fanout_result("gateway-fanout", slow.url("/"), gateway.url("/fanout"),
                                                          "one call", "20 calls through was.get")
            if "gateway-throughput" in scenarios:
                def measure_round() -> dict[str, float]:
                    bare, bare_us = bare_rate(fast.url("/"), duration)
                    through_was, was_us = wrk_rate(gateway.url("/was"), duration, pid)
                    through_h2, h2_us = wrk_rate(gateway.url("/was-h2"), duration, pid)
                    through_requests, requests_us = wrk_rate(gateway.url("/requests"), duration, pid)
                    alone, alone_us = wrk_rate(gateway.url("/none"), duration, pid)
                    return {"bare": bare, "was": through_was, "was-h2": through_h2, "requests": through_requests,
                            "none": alone, "was/bare": through_was / bare,
                            "was/requests": through_was / through_requests, "was-h2/was": through_h2 / through_was,
                            "ceiling/bare": ceiling(alone, bare) / bare,
                            "us bare": bare_us, "us was": was_us, "us was-h2": h2_us, "us requests": requests_us,
                            "us none": alone_us, "cpu was/bare": bare_us / was_us,
                            "cpu was/requests": requests_us / was_us,
                            "cpu ceiling/bare": bare_us / (alone_us + bare_us)}

                results["gateway-throughput"] = throughput_result(rounds(count, measure_round))
    return results


def throughput_result(runs: list[dict[str, float]]) -> dict:
    figures = medians(runs)
    summary = (
        f"(medians of {len(runs)} rounds) bare aiohttp loop {figures['bare']:.0f} req/s, was.get "
        f"{figures['was']:.0f} req/s ({figures['was/bare']:.2f}x the bare loop), requests.Session "
        f"{figures['requests']:.0f} req/s (was.get is {figures['was/requests']:.2f}x requests), was.get to an h2c "
        f"member {figures['was-h2']:.0f} req/s ({figures['was-h2/was']:.2f}x was.get over HTTP/1.1); the server "
        f"with no call {figures['none']:.0f} req/s, so a ceiling of {figures['ceiling/bare']:.2f}x the bare loop\n"
        f"  per CPU (microseconds of the subject's CPU per request): bare loop {figures['us bare']:.0f}, was.get "
        f"{figures['us was']:.0f}, was.get h2c {figures['us was-h2']:.0f}, requests.Session "
        f"{figures['us requests']:.0f}, no call {figures['us none']:.0f}: was.get does {figures['cpu was/bare']:.2f}x "
        f"the bare loop's work per CPU second (ceiling {figures['cpu ceiling/bare']:.2f}x) and "
        f"{figures['cpu was/requests']:.2f}x requests'")
    targets = [*goal("gateway-throughput: was.get >= 0.7x the bare aiohttp loop", figures["was/bare"],
                     figures["cpu was/bare"], 0.7, figures["ceiling/bare"], figures["cpu ceiling/bare"]),
               *goal("gateway-throughput: was.get >= 3x requests.Session", figures["was/requests"],
                     figures["cpu was/requests"], 3)]
    return {"figures": figures, "rounds": runs, "summary": summary, "targets": targets}


def report(results: dict) -> None:
    for name, result in results.items():
        print(f"{name}: {result['summary']}")
    for result in results.values():
        for label, passed, detail in result["targets"]:
            print(f"{verdict(passed)}  {label}: {detail}")


def parse_args(scenarios: tuple[str, ...], argv=None, **options) -> argparse.Namespace:
    """The options both plugin benches take (`options`: more, name to default); wrk required."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(scenarios), help=f"comma-separated: {','.join(scenarios)}")
    parser.add_argument("--json", type=Path, help="also write the results there (for bench/run.py)")
    for name, default in options.items():
        parser.add_argument(f"--{name}", default=default)
    args = parser.parse_args(argv)
    unknown = [name for name in args.only.split(",") if name not in scenarios]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(scenarios)}")
    args.only = args.only.split(",")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: bash bench/setup.sh")
    return args


def finish(results: dict, output: Path | None) -> None:
    """Print the results, and write them as JSON to `output` if given."""
    report(results)
    if output:
        output.write_text(json.dumps(results, indent=2) + "\n")


def main() -> None:
    args = parse_args(SCENARIOS)
    finish(measure(args.only, args.duration, args.rounds), args.json)


if __name__ == "__main__":
    main()
