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

Needs `perf` with tracepoint access (root, or kernel.perf_event_paranoid <= -1) and the venvs
of bench/setup.sh.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

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


def measure(name: str, duration: int, connections: int, tmp: Path, close: bool = False) -> dict:
    """One server: started, warmed up for a second, then counted over exactly one wrk run and
    divided by the requests that run completed (wrk's "N requests in T s"). With `close`, every
    request says `Connection: close`, and wrk opens a new connection for the next one."""
    server = run.SERVERS[name]
    port = run.free_port()
    running = run.Running(server.argv(server, port, tmp), {**server.env}, tmp / f"{name}.log",
                          SERVER_CPU, run.APPS)
    try:
        url = f"http://127.0.0.1:{port}/hello"
        running.wait_ready(run.probe_http1, url, port, "/hello")
        wrk = ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{connections}",
               *(["-H", "Connection: close"] if close else [])]
        subprocess.run([*wrk, "-d1s", url], capture_output=True, timeout=60, check=True)  # warm-up
        stats, report = perf_stat(serving_pid(running), [*wrk, f"-d{duration}s", url])
    finally:
        running.stop()
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", report)
    if not done:
        raise RuntimeError(f"cannot parse wrk output: {report[-300:]}")
    requests, seconds = int(done.group(1)), float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    per = {key: value / requests for key, value in stats.items()}
    per["rps"] = requests / seconds
    per["cpu_pct"] = 100 * stats.get("cpu_us", 0) / (seconds * 1e6)
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
                results[name].append(measure(name, args.duration, args.connections, Path(tmp), args.close))
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
