#!/usr/bin/env python3
"""Instructions per request of the Skitai under test, counted by valgrind's callgrind.

Why: on the shared 2-core machine req/s and CPU time per request move with the other work;
the number of instructions a request costs does not. The server (`apps/skitai_hello.py`, or
`apps/skitai_ws_echo.py` for `ws-echo`) runs under `valgrind --tool=callgrind`; the client runs
outside valgrind. The server runs twice: once through a warm-up and a stop, once through the same
warm-up, a fixed number of requests and a stop; the difference of the serving worker's totals,
divided by the requests, is the figure; the event loop's thread (the worker's main thread) is
counted apart too (`--separate-threads`), since work moved to other threads still counts in
the total. Every thread
of the worker counts (the loop, the WSGI pool, the log writer), and so does the kernel-side
nothing: system calls are one instruction each to callgrind, so this measures the Python and C
work of the server, not the kernel's.

    python3 bench/callgrind.py                       # hello, keep-alive, threads=0 and 4
    python3 bench/callgrind.py --scenario h2c --threads 4
    python3 bench/callgrind.py --access-log          # with the request log on (to a file)
    python3 bench/callgrind.py --threads -1          # uvicorn's ASGI hello (the peers venv)
    python3 bench/callgrind.py --scenario proxy-hello --threads 0   # the reverse proxy
    python3 bench/callgrind.py --scenario hello-close --threads 0,4,-1   # a connection per request

`hello-close` sends every request with `Connection: close` (`h2load --h1 -H 'Connection: close'`,
which opens a new connection for each request once the server closes the last one), so the
figure includes accepting, setting up and freeing a connection.

`proxy-hello` counts the reverse proxy (`apps/skitai_proxy.py`) under valgrind, forwarding
`/hello` to one gunicorn member (`apps/proxy_member.py`) that runs outside valgrind: only the
proxy's own instructions count (gunicorn in the server's venv).

Needs valgrind, h2load (nghttp2-client) and, for ws-echo, the peers venv of setup.sh.
The per-function profile stays in the dump file (printed), for `callgrind_annotate`.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
APPS = BENCH / "apps"
START_TIMEOUT = 600.0  # valgrind makes Python start some 50x slower (more on a loaded machine)
STEP_TIMEOUT = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"callgrind: server on port {port} did not start in time")


def worker_pid(master: int) -> int:
    """The serving process: the master's one child (skitai.run forks one worker)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.5)
    raise SystemExit("callgrind: no worker process appeared")


def load(scenario: str, port: int, requests: int, python: str) -> None:
    if scenario == "ws-echo":
        # ws_echo_client.py is duration-based; a fixed count is what instructions need
        code = WS_LOAD.format(port=port, requests=requests)
        command = [python, "-c", code]
    else:
        command = ["h2load", "-n", str(requests), "-c", "10", f"http://127.0.0.1:{port}/hello"]
        command[1:1] = {"h2c": ["-m", "10"], "hello-close": ["--h1", "-H", "Connection: close"]}.get(
            scenario, ["--h1"])
    done = subprocess.run(command, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    if done.returncode != 0 or "succeeded" in done.stdout and not re.search(
            rf"{requests} succeeded", done.stdout):
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
        raise SystemExit("callgrind: the load failed")


WS_LOAD = """
import asyncio, websockets
async def one(n):
    async with websockets.connect("ws://127.0.0.1:{port}/echo", compression=None, ping_interval=None,
                                  open_timeout=600, close_timeout=60) as ws:
        for _ in range(n):
            await ws.send("x" * 32)
            assert await ws.recv() == "x" * 32
async def main():
    await asyncio.gather(*(one({requests} // 10) for _ in range(10)))
asyncio.run(main())
"""


def total_ir(path: Path) -> int:
    text = path.read_text()
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if not match:
        raise SystemExit(f"callgrind: no totals in {path}")
    return int(match.group(1))


MEMBER_PORT = 0  # proxy-hello: the gunicorn member's port (see `member`)


def member(python: str) -> subprocess.Popen:
    """The member behind the proxy of `proxy-hello`, as bench/proxy.py runs it (outside valgrind)."""
    global MEMBER_PORT
    MEMBER_PORT = free_port()
    process = subprocess.Popen([python, "-m", "gunicorn", "--chdir", str(APPS), "-b", f"127.0.0.1:{MEMBER_PORT}",
                                "-k", "gthread", "-w", "1", "--threads", "4", "--keep-alive", "60",
                                "--log-level", "warning", "proxy_member:app"], start_new_session=True)
    wait_port(MEMBER_PORT, time.monotonic() + 60)
    return process


def run_server(scenario: str, threads: int, warm: int, requests: int, access_log: bool,
               prefix: Path, python: str, ws_python: str) -> tuple[int, int]:
    """Instructions of the serving worker, from start to stop, having served `warm` then
    `requests` requests."""
    port = free_port()
    app = APPS / {"ws-echo": "skitai_ws_echo.py", "proxy-hello": "skitai_proxy.py"}.get(scenario, "skitai_hello.py")
    command = [python, str(app), f"--port={port}"]
    if threads < 0:  # the reference: uvicorn's ASGI hello (uvloop + httptools), one process
        command = [str(BENCH / ".venvs" / "peers" / "bin" / "python"), "-m", "uvicorn", "--app-dir",
                   str(APPS), "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                   "--no-access-log", "--log-level", "warning", "hello_asgi:app"]
    env = {**os.environ, "BENCH_THREADS": str(threads), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0"}
    if access_log:
        env["BENCH_ACCESS_LOG"] = "1"
    if scenario == "proxy-hello":
        env["PROXY_MEMBER"] = f"127.0.0.1:{MEMBER_PORT}"
    with open(f"{prefix}.server.log", "w") as log:
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes",
             f"--callgrind-out-file={prefix}.%p.out", *command], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            wait_port(port, time.monotonic() + START_TIMEOUT)
            worker = server.pid if threads < 0 else worker_pid(server.pid)
            load(scenario, port, warm, ws_python)
            if requests:
                load(scenario, port, requests, ws_python)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
    return thread_totals(prefix, worker)


def thread_totals(prefix: Path, worker: int) -> tuple[int, int]:
    """(all threads, the main thread: the event loop) of the worker's per-thread dumps."""
    dumps = sorted(prefix.parent.glob(f"{prefix.name}.{worker}.out-*"))
    if not dumps:
        raise SystemExit(f"callgrind: no dumps of {prefix}.{worker}")
    totals = [total_ir(dump) for dump in dumps]
    return sum(totals), totals[0]


def measure(scenario: str, threads: int, requests: int, access_log: bool, out: Path,
            python: str, ws_python: str) -> tuple[float, float]:
    """(Ir of start + warm-up + `requests` + stop) - (Ir of start + warm-up + stop), per request:
    what the requests alone cost (callgrind_control cannot reach a forked worker here)."""
    name = f"{scenario}-t{threads}{'-log' if access_log else ''}"
    warm = max(200, requests // 5)  # caches, pool threads, the first second's encodings
    base = run_server(scenario, threads, warm, 0, access_log, out / f"{name}-base", python, ws_python)
    full = run_server(scenario, threads, warm, requests, access_log, out / name, python, ws_python)
    per_request = (full[0] - base[0]) / requests
    on_loop = (full[1] - base[1]) / requests
    print(f"{scenario} {'uvicorn' if threads < 0 else f'threads={threads}'} log={'on' if access_log else 'off'}: "
          f"{per_request:,.0f} Ir/request, {on_loop:,.0f} of them on the loop thread "
          f"({requests} requests; dumps in {out})", flush=True)
    return per_request, on_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=["hello", "hello-close", "h2c", "ws-echo", "proxy-hello"],
                        default="hello")
    parser.add_argument("--threads", default="0,4",
                        help="comma-separated (default 0,4); -1 measures uvicorn's ASGI hello instead")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--access-log", action="store_true", help="request log on (to a file)")
    parser.add_argument("--python", default=sys.executable, help="the server's interpreter")
    parser.add_argument("--ws-python", default=str(BENCH / ".venvs" / "peers" / "bin" / "python"),
                        help="the WebSocket client's interpreter (needs websockets)")
    parser.add_argument("--out", default=None, help="directory for the dumps (default: a temp dir)")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="skitai-callgrind-"))
    out.mkdir(parents=True, exist_ok=True)
    gunicorn = member(args.python) if args.scenario == "proxy-hello" else None
    try:
        for threads in (int(t) for t in args.threads.split(",")):
            measure(args.scenario, threads, args.requests, args.access_log, out, args.python, args.ws_python)
    finally:
        if gunicorn is not None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(timeout=30)


if __name__ == "__main__":
    main()
