#!/usr/bin/env python3
"""The serving worker's memory under keep-alive load with the request log on (issue 20, goal 7).

Why a script of its own: run.py's scenarios run Skitai with the log off (a line per request on
the console would measure the console), but users run with it on, and the log's records are held
in memory until its writer thread has written them. This starts `apps/skitai_hello.py` with
`BENCH_ACCESS_LOG=1` (the lines go to a file, as with `enable_file_logging()`), loads it with
`wrk -t1 -c64` (server and wrk pinned to different cores, as run.py does), samples the worker's
VmRSS every 0.1 s, and after a stop checks that the file has one line per request served.

    python3 bench/log_memory.py                      # threads=0 and 4, log on, 10 s each
    python3 bench/log_memory.py --threads 0 --log off --duration 5
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from callgrind import free_port, wait_port, worker_pid
from procs import status_kb

BENCH = Path(__file__).resolve().parent


def measure(threads: int, log_on: bool, duration: int, python: str) -> None:
    port = free_port()
    env = {**os.environ, "BENCH_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1"}
    if log_on:
        env["BENCH_ACCESS_LOG"] = "1"
    with tempfile.NamedTemporaryFile("w+", prefix="skitai-request-", suffix=".log") as lines:
        server = subprocess.Popen(["taskset", "-c", "0", python, str(BENCH / "apps" / "skitai_hello.py"),
                                   f"--port={port}"], env=env, stdout=lines, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            wait_port(port, time.monotonic() + 60)
            worker = worker_pid(server.pid)
            idle = status_kb(worker, "VmRSS")
            wrk = subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{duration}s",
                                    f"http://127.0.0.1:{port}/hello"], stdout=subprocess.PIPE, text=True)
            peak = idle
            while wrk.poll() is None:
                peak = max(peak, status_kb(worker, "VmRSS"))
                time.sleep(0.1)
            hwm = status_kb(worker, "VmHWM")
            report = wrk.stdout.read()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        requests = int(re.search(r"(\d+) requests in", report).group(1))
        logged = sum(1 for line in Path(lines.name).open() if " GET /hello HTTP/1.1 " in line)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", report).group(1)
    print(f"threads={threads} log={'on' if log_on else 'off'}: worker VmRSS idle {idle / 1024:.1f} MB, "
          f"peak {peak / 1024:.1f} MB, VmHWM {hwm / 1024:.1f} MB; {float(rate):,.0f} req/s, "
          f"{requests} requests, {logged} lines logged", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="0,4", help="comma-separated (default 0,4)")
    parser.add_argument("--log", choices=["on", "off"], default="on")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk load (10)")
    parser.add_argument("--python", default=str(BENCH / ".venvs" / "skitai" / "bin" / "python"))
    args = parser.parse_args()
    for threads in (int(t) for t in args.threads.split(",")):
        measure(threads, args.log == "on", args.duration, args.python)


if __name__ == "__main__":
    sys.exit(main())
