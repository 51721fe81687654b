"""System calls, context switches and CPU per request under keep-alive load (issue 20).

Instruction counts (callgrind.py) miss what a server costs in the kernel and in waiting: this
runs each server pinned to CPU 0 with `wrk -t1 -c64` on CPU 1 (run.py's launchers), and
`perf stat -p` on the serving process, with wrk as its command, counts the server's system calls
by kind, its context switches and its task clock over exactly that wrk run. Everything is divided
by the requests that run completed, so the figures stay comparable on a machine that other work
is loading, where req/s alone does not. Servers take turns run by run, so each meets the same
stretches of outside load.

    python3 bench/syscalls.py --servers skitai-t0,skitai-t4,uvicorn --runs 3
    python3 bench/syscalls.py --close      # every request on a new connection (Connection: close)
    python3 bench/syscalls.py --scenario ws-echo --servers skitai-ws-t0,skitai-ws   # per round trip

`ws-echo` loads the WebSocket echo servers with run.py's client (10 connections, one message in
flight each) instead of wrk, and divides by the round trips.

Needs `perf` with tracepoint access (root, or kernel.perf_event_paranoid <= -1) and the venvs
of bench/setup.sh.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).parent))
import procs  # noqa: E402  (the process tree and its CPU time, read from /proc)
import run  # noqa: E402  (the bench's launchers and probes)

EVENTS = ["task-clock", "context-switches", "raw_syscalls:sys_enter",
          *(f"syscalls:sys_enter_{name}" for name in (
              "read", "recvfrom", "write", "writev", "sendto", "sendmsg", "epoll_wait", "epoll_pwait",
              "epoll_ctl", "futex", "getpid", "clock_gettime",
              # a connection's own: what --close adds to every request
              "accept4", "getsockname", "getpeername", "setsockopt", "shutdown", "close"))]
SERVER_CPU, LOAD_CPU = 0, 1
SHORT = {"task-clock": "cpu_us", "context-switches": "cswch", "raw_syscalls:sys_enter": "syscalls"}


def serving_pid(running: run.Running) -> int:
    """The process that serves: the deepest of the launched tree (a master forks its worker)."""
    tree = procs.process_tree(running.proc.pid)
    return max(tree) if len(tree) > 1 else running.proc.pid


def perf_stat(pid: int, command: list) -> tuple[dict, str]:
    """`pid`'s counts while `command` runs (perf stat -p PID -- command), and its stdout."""
    before = procs.cpu_ticks(pid)
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), "-p", str(pid), "--", *command],
                         capture_output=True, text=True, timeout=600)
    after = procs.cpu_ticks(pid)
    counts = {"user_us": (after[0] - before[0]) * 1e6 / procs.CLK_TCK,
              "sys_us": (after[1] - before[1]) * 1e6 / procs.CLK_TCK}
    for line in out.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 3 and re.match(r"^[\d.]+$", fields[0]):
            name = fields[2]
            counts[SHORT.get(name, name.replace("syscalls:sys_enter_", ""))] = float(fields[0])
    if out.returncode != 0 or "syscalls" not in counts:
        raise RuntimeError(f"perf stat failed: {out.stderr.strip()[-300:]}")
    if "cpu_us" in counts:
        counts["cpu_us"] *= 1000.0  # task-clock is in ms
    return counts, out.stdout


def wrk_load(port: int, duration: int, connections: int, close: bool = False) -> tuple[list, list, Callable]:
    """hello: the warm-up and counted commands, and the report's parser. With `close`, every
    request says `Connection: close`, and wrk opens a new connection for the next one."""
    url = f"http://127.0.0.1:{port}/hello"
    wrk = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{connections}",
           *(["-H", "Connection: close"] if close else [])]

    def requests_and_seconds(report: str) -> tuple[int, float]:
        done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", report)
        if not done:
            raise RuntimeError(f"cannot parse wrk output: {report[-300:]}")
        return int(done.group(1)), float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    return [*wrk, "-d1s", url], [*wrk, f"-d{duration}s", url], requests_and_seconds


def ws_load(port: int, duration: int, connections: int, close: bool = False) -> tuple[list, list, Callable]:
    """WebSocket echo round trips (run.py's client, its own connection count; `close` does not
    apply to a WebSocket)."""
    url = f"ws://127.0.0.1:{port}/echo"
    client = ["taskset", "-c", str(LOAD_CPU), str(run.VENVS / "peers" / "bin" / "python"), str(run.WS_CLIENT),
              "-c", str(run.WS_CONNECTIONS), "-s", str(run.WS_MESSAGE_SIZE)]

    def requests_and_seconds(report: str) -> tuple[int, float]:
        stats = json.loads(report.strip().splitlines()[-1])
        if stats["errors"]:
            raise RuntimeError(f"ws client errors: {stats}")
        return int(stats["round_trips"]), float(stats["elapsed"])
    return [*client, "-d", "1", url], [*client, "-d", str(duration), url], requests_and_seconds


SCENARIOS = {"hello": ("http", "/hello", run.probe_http1, wrk_load), "ws-echo": ("ws", "/echo", run.probe_ws, ws_load)}


_launches = itertools.count(1)


def measure(scenario: str, name: str, duration: int, connections: int, tmp: Path, close: bool = False) -> dict:
    """One server: started, warmed up for a second, then counted over exactly one load run and
    divided by the requests (round trips) that run completed."""
    server = run.SERVERS[name]
    port = run.free_port()
    scheme, path, probe, load = SCENARIOS[scenario]
    label = f"{name}-{next(_launches)}"  # a server measured again gets a log dir of its own
    running = run.Running(server.argv(server, port, tmp), run.launch_env(server, tmp, label),
                          tmp / f"{label}.log", SERVER_CPU, run.APPS)
    try:
        running.wait_ready(probe, f"{scheme}://127.0.0.1:{port}{path}", port, path)
        warm_up, counted, requests_and_seconds = load(port, duration, connections, close)
        subprocess.run(warm_up, capture_output=True, timeout=60, check=True)
        stats, report = perf_stat(serving_pid(running), counted)
    finally:
        running.stop()
    requests, seconds = requests_and_seconds(report)
    per = {key: value / requests for key, value in stats.items()}
    per["rps"] = requests / seconds
    per["cpu_pct"] = 100 * stats.get("cpu_us", 0) / (seconds * 1e6)
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="hello")
    parser.add_argument("--servers", default="skitai-t0,skitai-t4,uvicorn")
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--close", action="store_true", help="Connection: close on every request")
    args = parser.parse_args()
    names = args.servers.split(",")
    results: dict = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for name in names:  # interleaved, so a burst of outside load hits every server
                results[name].append(measure(args.scenario, name, args.duration, args.connections,
                                             Path(tmp), args.close))
    keys = ["rps", "cpu_pct", "cpu_us", "user_us", "sys_us", "syscalls", "cswch", "read", "recvfrom", "write", "writev",
            "sendto", "sendmsg", "epoll_wait", "epoll_pwait", "epoll_ctl", "futex", "getpid", "clock_gettime",
            *(["accept4", "getsockname", "getpeername", "setsockopt", "shutdown", "close"] if args.close else [])]
    print("median of", args.runs, "runs; per request unless noted (rps: req/s, cpu_pct: % of the core)")
    print(f"{'server':<12}" + "".join(f"{key[:10]:>11}" for key in keys))
    for name in names:
        row = {key: statistics.median(run_[key] for run_ in results[name] if key in run_)
               for key in keys if any(key in run_ for run_ in results[name])}
        print(f"{name:<12}" + "".join(
            f"{row[key]:>11.0f}" if key in ("rps", "cpu_pct") else f"{row.get(key, 0):>11.3f}" for key in keys))


if __name__ == "__main__":
    main()
