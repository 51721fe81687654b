#!/usr/bin/env python3
"""Benchmark Skitai against peer WSGI servers and nginx on one machine.

Method, and why:
- Each server is pinned to one core (`taskset -c A`) and the load generator (`wrk`;
  `h2load` for h2c; `ws_echo_client.py` for WebSocket echo) to another (`taskset -c B`),
  so the client never steals CPU from the server and every server gets exactly one core,
  whatever its process model. The exceptions, `hello-scaling` and `work-scaling`, pin nothing:
  they measure how far a second worker process gets with both cores.
- Each scenario starts its servers, each on a free 127.0.0.1 port, waits until each answers
  one request in the scenario's protocol and warms each up for a second; then, N rounds, each
  server in turn takes one load run (`wrk -t1 -c50`, `h2load -c10 -m10`, or 10 echo
  connections): round 1 A, B, C, round 2 A, B, C... On a shared machine every server so meets
  the same stretches of outside load; the medians of the rounds count (a median of 3 shrugs
  off one noisy run), and ratios and PASS/MISS use them.
- CPU per request: the server tree's CPU time (user + system, /proc/PID/stat) over each
  load run, divided by the requests that run completed. The server decides it, while its
  req/s also shows the core share the machine's other work left it; the tables give the
  CPU-per-request ratio beside each req/s ratio (the goals are stated in req/s).
- Peak memory is the largest sum of VmRSS over the server's process tree, sampled
  from /proc during the runs (bench/procs.py; no psutil needed, so any python3 can run this
  file); PSS is kept too, since RSS counts the pages a forked master shares twice.
- CPU use of the server tree and of wrk is recorded: a server well below 100% of its
  core, or wrk near 100% of its own, means the client, not the server, was the limit.
- The server is stopped with SIGTERM, then SIGKILL after a timeout, only by the pids
  of the tree it started.

Run `bash bench/setup.sh` first; see bench/README.md.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from procs import UsageSampler, process_tree, start_time
from targets import check_targets, format_cpu_ratio

BENCH = Path(__file__).resolve().parent
APPS = BENCH / "apps"
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"

START_TIMEOUT = 30.0  # seconds for a server to answer its first request
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
CONNECTIONS = 50
H2_CONNECTIONS, H2_STREAMS = 10, 10  # h2load -c 10 -m 10, as the HTTP/2 target is stated
WS_CONNECTIONS, WS_MESSAGE_SIZE = 10, 32  # ws_echo_client.py: 10 connections, 32-byte text messages
WS_CLIENT = BENCH / "ws_echo_client.py"


# --- servers ---------------------------------------------------------------------------

@dataclass
class Server:
    """How to launch one server; `argv` gets the port and the run's temp dir."""

    name: str
    venv: str | None  # bench/.venvs/<venv>, None for system binaries (nginx)
    argv: Callable[["Server", int, Path], list]  # (server, port, temp dir) -> command line
    env: dict = field(default_factory=dict)
    package: str | None = None  # distribution whose version goes into the results
    # extra load-tool options, after the scenario's: h2load and wrk take the last of a repeated
    # option, so `--h1 -c100 -m1` turns h2load's h2c `-c10 -m10` into 100 HTTP/1.1 connections
    load_args: list = field(default_factory=list)
    path: str | None = None  # requested instead of the scenario's path (skitai-hello)
    # Skitai with its access log on, written to files in a directory of the run's temp dir
    # (BENCH_ACCESS_LOG and BENCH_LOG_DIR of apps/skitai_hello.py), as a user runs it
    log_to_files: bool = False

    def python(self) -> str:
        return str(VENVS / self.venv / "bin" / "python")

    def bin(self, name: str) -> str:
        return str(VENVS / self.venv / "bin" / name)


def _skitai(s: Server, port: int, tmp: Path) -> list:
    return [s.python(), str(APPS / "skitai_hello.py"), f"--port={port}"]


def _uvicorn(access_log: bool) -> Callable:
    """uvicorn's ASGI hello, its access log off, or on at INFO to stderr, which run.py writes to
    the run's log file (the default handler, as a user runs it)."""
    log_options = (["--access-log", "--log-level", "info"] if access_log
                   else ["--no-access-log", "--log-level", "warning"])
    return lambda s, port, tmp: [
        s.python(), "-m", "uvicorn", "--app-dir", str(APPS), "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", *log_options, "hello_asgi:app"]


H1_OVER_H2LOAD = ["--h1", "-c100", "-m1"]  # as many requests in flight as h2c's -c10 -m10

SERVERS = {s.name: s for s in [
    Server("skitai-t4", "skitai", _skitai, {"BENCH_THREADS": "4"}, "skitai"),
    Server("skitai-t0", "skitai", _skitai, {"BENCH_THREADS": "0"}, "skitai"),
    # the same with the access log on, to files (issue 20's goals hold with the log on and off)
    Server("skitai-t4-log", "skitai", _skitai, {"BENCH_THREADS": "4"}, "skitai", log_to_files=True),
    Server("skitai-t0-log", "skitai", _skitai, {"BENCH_THREADS": "0"}, "skitai", log_to_files=True),
    # h2c-hello: the same servers over HTTP/1.1 keep-alive, loaded by the same client (h2load --h1),
    # so the h2c/HTTP/1.1 ratio compares the protocols, not two load tools
    Server("skitai-t4-h1", "skitai", _skitai, {"BENCH_THREADS": "4"}, "skitai", load_args=H1_OVER_H2LOAD),
    Server("skitai-t0-h1", "skitai", _skitai, {"BENCH_THREADS": "0"}, "skitai", load_args=H1_OVER_H2LOAD),
    Server("skitai-w1", "skitai", _skitai, {"BENCH_THREADS": "4", "BENCH_WORKERS": "1", "BENCH_WORK": "1"}, "skitai"),
    Server("skitai-w2", "skitai", _skitai, {"BENCH_THREADS": "4", "BENCH_WORKERS": "2", "BENCH_WORK": "1"}, "skitai"),
    # skitai-t4 asked for /hello inside a static scenario: Skitai's own app rate in the same run,
    # which the static targets compare with
    Server("skitai-hello", "skitai", _skitai, {"BENCH_THREADS": "4"}, "skitai", path="/hello"),
    # h2c-large: skitai-t4 with the large-body app mounted, over h2c and (same server, same
    # client) over HTTP/1.1
    Server("skitai-h2c", "skitai", _skitai, {"BENCH_THREADS": "4", "BENCH_LARGE": "1"}, "skitai"),
    Server("skitai-h1", "skitai", _skitai, {"BENCH_THREADS": "4", "BENCH_LARGE": "1"}, "skitai",
           load_args=["--h1"]),
    Server("hypercorn-h2c", "peers", lambda s, port, tmp: [
        s.bin("hypercorn"), "--workers", "1", "-b", f"127.0.0.1:{port}", "large:app"],
        package="hypercorn"),
    Server("gunicorn-w2", "peers", lambda s, port, tmp: [
        s.bin("gunicorn"), "-k", "gthread", "-w", "2", "--threads", "4",
        "-b", f"127.0.0.1:{port}", "--chdir", str(APPS), "hello:app"], package="gunicorn"),
    Server("gunicorn-gthread", "peers", lambda s, port, tmp: [
        s.bin("gunicorn"), "-k", "gthread", "-w", "1", "--threads", "4",
        "-b", f"127.0.0.1:{port}", "--chdir", str(APPS), "hello:app"], package="gunicorn"),
    Server("waitress", "peers", lambda s, port, tmp: [
        s.bin("waitress-serve"), "--threads=4", f"--listen=127.0.0.1:{port}",
        "hello:app"], package="waitress"),
    # Hypercorn wraps a 2-argument callable as WSGI and runs it in a thread executor.
    Server("hypercorn", "peers", lambda s, port, tmp: [
        s.bin("hypercorn"), "--workers", "1", "-b", f"127.0.0.1:{port}", "hello:app"],
        package="hypercorn"),
    # The reference for a Python server on the same loop and parser as Skitai (issue 20): an
    # ASGI hello on uvicorn with uvloop and httptools, one process, access log off (and on).
    Server("uvicorn", "peers", _uvicorn(access_log=False), package="uvicorn"),
    Server("uvicorn-log", "peers", _uvicorn(access_log=True), package="uvicorn"),
    # One worker process, one Rust runtime thread, 4 Python blocking threads: the
    # same "one process, 4 app threads" shape as skitai-t4 and gunicorn-gthread.
    Server("granian", "peers", lambda s, port, tmp: [
        s.bin("granian"), "--interface", "wsgi", "--workers", "1", "--runtime-threads", "1",
        "--blocking-threads", "4", "--http", "1", "--no-ws", "--host", "127.0.0.1",
        "--port", str(port), "hello:app"], package="granian"),
    # The same shape with HTTP/2 only: `--http 2` serves h2c with prior knowledge (and, unlike
    # `--http auto`, nothing else), which is what h2load speaks.
    Server("granian-h2", "peers", lambda s, port, tmp: [
        s.bin("granian"), "--interface", "wsgi", "--workers", "1", "--runtime-threads", "1",
        "--blocking-threads", "4", "--http", "2", "--no-ws", "--host", "127.0.0.1",
        "--port", str(port), "hello:app"], package="granian"),
    Server("orig-skitai", "orig", lambda s, port, tmp: [
        s.python(), str(APPS / "orig_skitai_hello.py"), f"--port={port}"],
        {"BENCH_THREADS": "4"}, "skitai"),
    # WebSocket echo servers (the ws-echo scenario).
    Server("websockets", "peers", lambda s, port, tmp: [
        s.python(), str(APPS / "ws_echo_websockets.py"), f"--port={port}"], package="websockets"),
    Server("hypercorn-ws", "peers", lambda s, port, tmp: [
        s.bin("hypercorn"), "--workers", "1", "-b", f"127.0.0.1:{port}", "ws_echo_asgi:app"],
        package="hypercorn"),
    Server("skitai-ws", "skitai", lambda s, port, tmp: [
        s.python(), str(APPS / "skitai_ws_echo.py"), f"--port={port}"],
        {"BENCH_THREADS": "4"}, "skitai"),
    # threads=0: the generator runs on the event-loop thread, no hop to the pool per message.
    Server("skitai-ws-t0", "skitai", lambda s, port, tmp: [
        s.python(), str(APPS / "skitai_ws_echo.py"), f"--port={port}"],
        {"BENCH_THREADS": "0"}, "skitai"),
    Server("orig-skitai-ws", "orig", lambda s, port, tmp: [
        s.python(), str(APPS / "orig_skitai_ws_echo.py"), f"--port={port}"],
        {"BENCH_THREADS": "4"}, "skitai"),
    Server("nginx", None, lambda s, port, tmp: [
        shutil.which("nginx") or "/usr/sbin/nginx", "-e", str(tmp / "nginx-error.log"),
        "-p", str(tmp), "-c", str(write_nginx_conf(tmp, port))]),
]}

HELLO_SERVERS = ["skitai-t4", "skitai-t0", "uvicorn", "skitai-t4-log", "skitai-t0-log", "uvicorn-log",
                 "gunicorn-gthread", "waitress", "hypercorn", "granian", "orig-skitai"]
STATIC_SERVERS = ["skitai-t4", "nginx", "orig-skitai"]
STATIC_SERVERS_WITH_HELLO = ["skitai-hello", *STATIC_SERVERS]


@dataclass
class Scenario:
    name: str
    path: str
    servers: list
    references: list
    headers: list = field(default_factory=list)
    what: str = ""
    tool: str = "wrk"  # or "h2load": HTTP/2 with prior knowledge (h2c), -c 10 -m 10;
    # or "h2load-large": one stream at a time (-c 1 -m 1), MB/s reported too;
    # or "ws": WebSocket echo round trips with ws_echo_client.py
    load_args: list = field(default_factory=list)  # after the tool's defaults: wrk's -t2 replaces -t1
    # False: neither the servers nor the load client under taskset, so a server may use both
    # cores (the workers' scaling); the client then competes with it for them
    pinned: bool = True


# The hello URL is /hello, not /: the original skitai always logs requests for "/"
# (its log_off ignores that exact path), and console logging is not what we measure.
# Every hello server mounts the app at the root, so /hello reaches the same app.
SCENARIOS = {s.name: s for s in [
    Scenario("hello-keepalive", "/hello", HELLO_SERVERS, ["uvicorn", "gunicorn-gthread", "waitress", "granian"],
             what="hello-world WSGI app, keep-alive connections"),
    Scenario("hello-close", "/hello", HELLO_SERVERS, ["uvicorn", "gunicorn-gthread", "waitress", "granian"],
             ["Connection: close"], "hello-world WSGI app, a new TCP connection per request"),
    # Both servers' processes share the server core, so this compares process models on equal
    # hardware rather than measuring scaling.
    Scenario("hello-workers", "/hello", ["skitai-w2", "gunicorn-w2"], ["gunicorn-w2"],
             what="hello-world WSGI app, 2 worker processes x 4 threads, keep-alive"),
    # Scaling (issue 20, goal 5): workers=2 against workers=1 with both cores open to them.
    Scenario("hello-scaling", "/hello", ["skitai-w1", "skitai-w2"], ["skitai-w1"],
             what="hello-world WSGI app, 1 or 2 worker processes x 4 threads, keep-alive, wrk -t2, "
                  "nothing pinned", load_args=["-t2"], pinned=False),
    # The same with a request that costs the server ~0.3 ms of Python (apps/work.py), so that
    # wrk's share of the two cores, which bounds hello-scaling's ratio here, is a few percent.
    Scenario("work-scaling", "/work", ["skitai-w1", "skitai-w2"], ["skitai-w1"],
             what="CPU-bound WSGI app (a 2,000-item list per request), 1 or 2 worker processes x 4 "
                  "threads, keep-alive, wrk -t2, nothing pinned", load_args=["-t2"], pinned=False),
    Scenario("static-1k", "/static/1k.bin", STATIC_SERVERS_WITH_HELLO, ["nginx", "skitai-hello"],
             what="1 KiB static file, keep-alive (skitai-hello: the same server's hello app)"),
    Scenario("static-64k", "/static/64k.bin", STATIC_SERVERS, ["nginx"],
             what="64 KiB static file, keep-alive"),
    Scenario("static-1m", "/static/1m.bin", STATIC_SERVERS, ["nginx"],
             what="1 MiB static file, keep-alive"),
    # hypercorn speaks h2c with prior knowledge on its plain listener, so its entry is the
    # HTTP/1.1 one; granian needs `--http 2` (granian-h2).
    Scenario("h2c-hello", "/hello", ["skitai-t4", "skitai-t0", "skitai-t4-h1", "skitai-t0-h1", "orig-skitai",
                                     "hypercorn", "granian-h2"],
             ["orig-skitai", "granian-h2"],
             what="hello-world WSGI app over HTTP/2 prior knowledge (h2load -c 10 -m 10; the -h1 "
                  "entries: HTTP/1.1, h2load --h1 -c 100 -m 1)",
             tool="h2load"),
    # Large WSGI bodies, one stream at a time: h2c against the same server and client over
    # HTTP/1.1 (h2load --h1) and against hypercorn's h2c.
    *(Scenario(f"h2c-large-{size}", f"/large/{size}", ["skitai-h2c", "skitai-h1", "hypercorn-h2c"],
               ["skitai-h1", "hypercorn-h2c"],
               what=f"a {size[:-1]} MiB WSGI response body over h2c (h2load -c 1 -m 1; skitai-h1: --h1)",
               tool="h2load-large")
      for size in ("1m", "64m")),
    # "req/s" is round trips per second here: one message sent and its echo received.
    Scenario("ws-echo", "/echo", ["skitai-ws", "skitai-ws-t0", "websockets", "hypercorn-ws", "orig-skitai-ws"],
             ["websockets", "hypercorn-ws", "orig-skitai-ws"],
             what=f"WebSocket echo, {WS_CONNECTIONS} connections x one {WS_MESSAGE_SIZE}-byte text "
                  "message in flight each (round trips/s)",
             tool="ws"),
]}

# The plugins' scenarios (issues 15 and 16) compare Skitai with a bare loop of the client library
# it drives, not with peer servers: their own scripts measure them, run by the interpreter that
# runs this file, which must then be the development venv (skitai, skitai-gateway, skitai-dbi,
# uvloop, requests; PostgreSQL on 127.0.0.1:5432 for db-*). They run only when --only names them.
PLUGIN_SCENARIOS = {"gateway-fanout": "gateway.py", "gateway-throughput": "gateway.py",
                    "db-fanout": "dbi.py", "db-throughput": "dbi.py"}

SCENARIO_GROUPS = {"h2c-large": ["h2c-large-1m", "h2c-large-64m"],  # --only names for several
                   "plugins": list(PLUGIN_SCENARIOS)}



# --- static files and nginx ------------------------------------------------------------

def make_static_dir(tmp: Path) -> Path:
    """Random (incompressible) 1 KiB, 64 KiB and 1 MiB files, readable by nginx's worker user."""
    static = tmp / "static"
    static.mkdir()
    for name, size in (("1k.bin", 1024), ("64k.bin", 64 * 1024), ("1m.bin", 1024 * 1024)):
        (static / name).write_bytes(os.urandom(size))
        (static / name).chmod(0o644)
    static.chmod(0o755)
    tmp.chmod(0o755)
    return static


def write_nginx_conf(tmp: Path, port: int) -> Path:
    """A minimal nginx config serving tmp/static/ with all state files under tmp.

    keepalive_requests is raised from nginx's default 1000 so that nginx, like the
    Python servers, keeps wrk's connections open for the whole run.
    """
    conf = tmp / "nginx.conf"
    temp_paths = "\n".join(f"    {kind}_temp_path {tmp}/{kind};"
                           for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(f"""{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
{temp_paths}
    server {{
        listen 127.0.0.1:{port};
        root {tmp};
    }}
}}
""")
    return conf


# --- processes -------------------------------------------------------------------------

def pin(cpu: int | None) -> list:
    """The `taskset` prefix that keeps a command on `cpu`; none for an unpinned scenario (None)."""
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    """A started server: its Popen, log file, and the pids it spawned."""

    def __init__(self, argv: list, env: dict, log: Path, cpu: int | None, cwd: Path):
        self.log = log
        self.logf = open(log, "wb")
        # A process group of its own (a terminal's Ctrl-C reaches run.py alone), but not a session:
        # with the kernel's autogroup scheduling a session is a scheduling group, and the kernel
        # would split the CPUs between the server and the load client as two equal groups where
        # they share CPUs (the unpinned scenarios), letting the client preempt the server's threads
        # at each of its wake-ups: two workers took 28.3 us of CPU per request, against 17.0 (goal 5).
        self.proc = subprocess.Popen(
            [*pin(cpu), *argv], stdout=self.logf, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, **env}, cwd=cwd, process_group=0)
        self.known: dict = {}

    def remember_tree(self):
        if self.proc.poll() is None:
            self.known.update(process_tree(self.proc.pid))

    def wait_ready(self, probe: Callable, url: str, port: int, path: str) -> None:
        """Poll with `probe` (one request in the scenario's protocol) until it succeeds; raise if
        the process exits, the probe gets a wrong answer, or time runs out."""
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with code {self.proc.returncode}")
            try:
                probe(url, port, path)
                self.remember_tree()
                return
            except (OSError, subprocess.TimeoutExpired) as exc:  # not listening (yet), or no answer
                last = str(exc)
                time.sleep(0.2)
        raise RuntimeError(f"no answer within {START_TIMEOUT:.0f}s" + (f" (last: {last})" if last else ""))

    def stop(self) -> None:
        """SIGTERM the leader, then SIGKILL whatever of its tree is still there."""
        self.remember_tree()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        for pid, start in self.known.items():
            if start_time(pid) == start:  # still the very process we started
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


# --- wrk -------------------------------------------------------------------------------

def run_wrk(url: str, duration: int, headers: list, cpu: int | None, extra: list = ()) -> dict:
    argv = [*pin(cpu), "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", *extra]
    for header in headers:
        argv += ["-H", header]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 60)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr.strip() or out.stdout.strip()}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not match:
        raise RuntimeError(f"cannot parse wrk output: {out.stdout[-300:]}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out.stdout))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    done = re.search(r"(\d+) requests in ", out.stdout)
    return {"rps": float(match.group(1)), "requests": int(done.group(1)) if done else 0, "errors": errors,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "wrk_cpu_pct": round(100 * cpu / wall)}


def run_h2load(url: str, duration: int, headers: list, cpu: int | None, extra: list = ()) -> dict:
    """h2load over h2c (prior knowledge), 10 connections x 10 concurrent streams; the same
    result shape as `run_wrk`, failed and errored requests counted as errors."""
    return _h2load(["-c", str(H2_CONNECTIONS), "-m", str(H2_STREAMS), *extra], url, duration, headers, cpu)


def run_h2load_large(url: str, duration: int, headers: list, cpu: int | None, extra: list = ()) -> dict:
    """h2load with one connection and one stream at a time, for large bodies (h2c, or HTTP/1.1
    with `--h1` in `extra`); MB/s is kept beside req/s. h2load's windows (2**30 - 1 by default)
    leave the server's sending as the limit."""
    return _h2load(["-c", "1", "-m", "1", *extra], url, duration, headers, cpu)


def _h2load(options: list, url: str, duration: int, headers: list, cpu: int | None) -> dict:
    argv = [*pin(cpu), "h2load", *options, "-D", str(duration)]
    for header in headers:
        argv += ["-H", header]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 60)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    cpu_used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out.stdout)
    counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", out.stdout)
    if out.returncode != 0 or not rate or not counts:
        raise RuntimeError(f"h2load failed: {out.stderr.strip() or out.stdout[-300:]}")
    non2xx = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out.stdout)
    throughput = re.search(r"finished in [\d.]+s, [\d.]+ req/s, ([\d.]+)([KMG]?B)/s", out.stdout)
    scale = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}
    return {"rps": float(rate.group(1)), "requests": int(counts.group(1)),
            "errors": sum(int(n) for n in counts.groups()[2:]),
            "non2xx": sum(int(n) for n in non2xx.groups()) if non2xx else 0,
            "mb_per_s": round(float(throughput.group(1)) * scale[throughput.group(2)], 1) if throughput else None,
            "wrk_cpu_pct": round(100 * cpu_used / wall)}


def run_ws(url: str, duration: int, headers: list, cpu: int | None, extra: list = ()) -> dict:
    """ws_echo_client.py (peers venv): WebSocket echo round trips per second as "rps"; errors are
    failed connections, mismatched and timed-out echoes. `headers` is unused."""
    argv = [*pin(cpu), str(VENVS / "peers" / "bin" / "python"), str(WS_CLIENT),
            "-c", str(WS_CONNECTIONS), "-s", str(WS_MESSAGE_SIZE), "-d", str(duration), url]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    cpu_used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    try:
        stats = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"ws client failed: {out.stderr.strip()[-300:] or out.stdout[-300:]}") from None
    if out.returncode != 0:
        raise RuntimeError(f"ws client failed: {out.stderr.strip()[-300:]}")
    # The client's CPU share during the load, as it measures it (its start-up and imports left
    # out); the whole process's share is kept as well.
    return {"rps": float(stats["rps"]), "requests": int(stats["round_trips"]), "errors": int(stats["errors"]),
            "non2xx": 0,
            "error_kinds": stats.get("kinds", {}), "wrk_cpu_pct": int(stats["cpu_pct"]),
            "client_process_cpu_pct": round(100 * cpu_used / wall)}


LOAD_TOOLS = {"wrk": run_wrk, "h2load": run_h2load, "h2load-large": run_h2load_large, "ws": run_ws}
LOAD_CPU_LABEL = {"wrk": "wrk CPU", "h2load": "h2l CPU", "h2load-large": "h2l CPU", "ws": "cli CPU"}
URL_SCHEME = {"wrk": "http", "h2load": "http", "h2load-large": "http", "ws": "ws"}


# --- readiness probes: one request in the scenario's own protocol -----------------------------

def probe_http1(url: str, port: int, path: str) -> None:
    """GET over HTTP/1.1 must answer 200; raises OSError while the server is not listening yet."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")


def probe_h2c(url: str, port: int, path: str) -> None:
    """One h2c (prior knowledge) request with h2load; some servers (granian-h2) speak no HTTP/1.1."""
    out = subprocess.run(["h2load", "-n", "1", "-c", "1", url], capture_output=True, text=True, timeout=10)
    if not re.search(r"requests: 1 total, 1 started, 1 done, 1 succeeded", out.stdout):
        raise OSError(f"h2c probe: {out.stdout[-200:] or out.stderr[-200:]}")
    if not re.search(r"status codes: 1 2xx", out.stdout):
        raise RuntimeError(f"h2c GET {path} did not answer 2xx")


def probe_ws(url: str, port: int, path: str) -> None:
    """One WebSocket echo round trip with ws_echo_client.py --probe."""
    out = subprocess.run([str(VENVS / "peers" / "bin" / "python"), str(WS_CLIENT), "--probe",
                          "--timeout", "2", url], capture_output=True, text=True, timeout=15)
    if out.returncode != 0:
        raise OSError(out.stderr.strip()[-200:])


PROBES = {"wrk": probe_http1, "h2load": probe_h2c, "h2load-large": probe_http1, "ws": probe_ws}


# --- measurement: the scenario's servers take turns ---------------------------------------

def launch_env(server: Server, tmp: Path, label: str) -> dict:
    """The environment a server starts with: its own settings, the static dir if made, and for the
    `-log` entries the request log on, into a directory of its own under `tmp` named by `label`
    (run.py and syscalls.py both start servers this way, so an entry means the same in both)."""
    env = {**server.env, "PYTHONDONTWRITEBYTECODE": "1"}
    if (tmp / "static").is_dir():  # run.py's static files (syscalls.py makes none)
        env["BENCH_STATIC_DIR"] = str(tmp / "static")
    if server.log_to_files:
        log_dir = tmp / f"{label}-logs"
        log_dir.mkdir()
        env.update(BENCH_ACCESS_LOG="1", BENCH_LOG_DIR=str(log_dir))
    return env


class Subject:
    """One server started for a scenario: it is loaded once per round, in turn with the others,
    so that every server meets the same stretches of outside load on a shared machine (run back
    to back, each server's rounds met different load, and its req/s mostly showed its CPU share)."""

    def __init__(self, server: Server, scenario: Scenario, tmp: Path, cpus: tuple):
        """Start the server and warm it up; `self.result` holds the error if that failed."""
        self.server, self.scenario = server, scenario
        self.cpus = cpus if scenario.pinned else (None, None)
        self.load_args = [*scenario.load_args, *server.load_args]
        self.result = {"server": server.name, "ok": False}
        self.running: Running | None = None
        self.runs: list = []
        if server.venv and not Path(server.python()).exists():
            self.result["error"] = f"venv {server.venv} missing (run bench/setup.sh)"
            return
        port = free_port()
        env = launch_env(server, tmp, f"{scenario.name}-{server.name}")
        try:
            self.running = Running(server.argv(server, port, tmp), env, tmp / f"{scenario.name}-{server.name}.log",
                                   self.cpus[0], APPS)
        except OSError as exc:
            self.result["error"] = f"cannot start: {exc}"
            return
        path = server.path or scenario.path
        self.url = f"{URL_SCHEME[scenario.tool]}://127.0.0.1:{port}{path}"
        self.load = LOAD_TOOLS[scenario.tool]
        try:
            self.running.wait_ready(PROBES[scenario.tool], self.url, port, path)
            self.load(self.url, 1, scenario.headers, self.cpus[1], self.load_args)  # warm-up, not counted
            self.running.remember_tree()
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            self._fail(exc)
        except BaseException:  # interrupted while it started: not in measure_scenario's list yet
            self.running.stop()
            raise

    @property
    def alive(self) -> bool:
        return self.running is not None and "error" not in self.result

    def _fail(self, exc: Exception) -> None:
        self.result["error"] = str(exc)
        self.result["log_tail"] = self.running.log_tail()
        self.running.stop()

    def load_once(self, duration: int) -> dict | None:
        """One load run, with the server tree's memory peaks and CPU time over exactly that run
        (procs.UsageSampler); the server is stopped and marked failed if the run fails."""
        sampler = UsageSampler(self.running.proc.pid)
        sampler.start()
        try:
            run_ = self.load(self.url, duration, self.scenario.headers, self.cpus[1], self.load_args)
            run_.update(sampler.stop())
            self.running.remember_tree()
            if self.running.proc.poll() is not None:
                raise RuntimeError(f"exited during the run with code {self.running.proc.returncode}")
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            sampler.stop()
            self._fail(exc)
            return None
        # The server's CPU time per request: what the server decides, where req/s also shows how
        # much of the core the machine's other work left it.
        run_["cpu_us_per_request"] = (round(1e6 * run_["server_cpu_s"] / run_["requests"], 1)
                                      if run_["requests"] else None)
        self.runs.append(run_)
        return run_

    def finish(self) -> dict:
        """Stop the server; its result: medians of the rounds' req/s and CPU per request, peaks
        of memory, all errors."""
        if not self.alive:
            return self.result
        self.running.stop()
        runs = self.runs
        if not runs:  # interrupted before its first load run
            self.result["error"] = "no load run completed"
            return self.result
        self.result.update(
            ok=True, runs=runs, rps=round(statistics.median(r["rps"] for r in runs), 1),
            errors=sum(r["errors"] + r["non2xx"] for r in runs),
            wrk_cpu_pct=max(r["wrk_cpu_pct"] for r in runs),
            # the CPUs the load client had: one when pinned, else all of them (targets.py)
            load_cpus=1 if self.cpus[1] is not None else os.cpu_count(),
            rss_mb=max(r["rss_mb"] for r in runs), pss_mb=max(r["pss_mb"] for r in runs),
            process_rss_mb=max(r["process_rss_mb"] for r in runs), root_rss_mb=max(r["root_rss_mb"] for r in runs),
            server_cpu_pct=round(statistics.median(r["server_cpu_pct"] for r in runs)),
            server_cpu_s=round(sum(r["server_cpu_s"] for r in runs), 2))
        per_request = [r["cpu_us_per_request"] for r in runs if r["cpu_us_per_request"] is not None]
        self.result["cpu_us_per_request"] = round(statistics.median(per_request), 1) if per_request else None
        if all(r.get("mb_per_s") is not None for r in runs):
            self.result["mb_per_s"] = round(statistics.median(r["mb_per_s"] for r in runs), 1)
        return self.result


def measure_scenario(scenario: Scenario, names: list, args, tmp: Path, cpus: tuple) -> list:
    """Start the scenario's servers (`names`), then `args.runs` rounds in which each loads in
    turn (round 1: A, B, C; round 2: A, B, C ...), then stop them; a server that fails is
    reported failed and the others go on. Never raises."""
    subjects = []
    try:  # an interrupt (Ctrl-C) while starting or loading still stops every server started
        for name in names:
            print(f"  {scenario.name} / {name}: starting ...", end=" ", flush=True)
            subjects.append(Subject(SERVERS[name], scenario, tmp, cpus))
            print("ready" if subjects[-1].alive else "FAILED", flush=True)
        for round_ in range(1, args.runs + 1):
            for subject in subjects:
                if not subject.alive:
                    continue
                print(f"  {scenario.name} / {subject.server.name} round {round_}/{args.runs} ...",
                      end=" ", flush=True)
                run_ = subject.load_once(args.duration)
                print(f"{run_['rps']:.0f} req/s, {run_['cpu_us_per_request'] or 0:.1f} us/req" if run_
                      else "FAILED", flush=True)
    finally:
        results = [subject.finish() for subject in subjects]
    return results


# --- reporting -------------------------------------------------------------------------

def print_table(scenario: Scenario, results: list) -> None:
    by_name = {r["server"]: r for r in results}
    refs = [ref for ref in scenario.references if by_name.get(ref, {}).get("ok")]
    print(f"\n## {scenario.name}: {scenario.what}")
    rate = "rt/s" if scenario.tool == "ws" else "req/s"
    large = scenario.tool == "h2load-large"
    header = (f"{'server':<18} {rate:>9}" + (f" {'MB/s':>8}" if large else "") +
              f" {'RSS MB':>7} {'PSS MB':>7} {'wkr MB':>7} {'srv CPU':>7} {'us/req':>7}"
              f" {LOAD_CPU_LABEL[scenario.tool]:>7} {'errors':>6}")
    # Per reference: the req/s ratio (the goals' figure), then the CPU-per-request ratio (the
    # reference's us/req over this server's: above 1, this server spends less CPU per request).
    header += "".join(f" {'x ' + ref:>18} {'cpu x ' + ref:>22}" for ref in refs)
    print(header)
    print("-" * len(header))
    for r in results:
        if not r["ok"]:
            print(f"{r['server']:<18} FAILED: {r['error']}")
            for line in r.get("log_tail", "").splitlines():
                print(f"{'':<18}   | {line}")
            continue
        line = (f"{r['server']:<18} {r['rps']:>9.{1 if large else 0}f}" +
                (f" {r.get('mb_per_s') or 0:>8.0f}" if large else "") +
                f" {r['rss_mb']:>7.1f} {r['pss_mb']:>7.1f} {r.get('process_rss_mb', 0):>7.1f}"
                f" {r['server_cpu_pct']:>6}% {r.get('cpu_us_per_request') or 0:>7.1f} {r['wrk_cpu_pct']:>6}% "
                f"{r['errors']:>6}")
        line += "".join(f" {r['rps'] / by_name[ref]['rps']:>18.2f} {format_cpu_ratio(r, by_name[ref]):>22}"
                        for ref in refs)
        print(line)


def versions() -> dict:
    """Versions of what was measured, for the JSON record."""
    found = {}
    for server in SERVERS.values():
        if server.package and server.venv and Path(server.python()).exists():
            out = subprocess.run([server.python(), "-c",
                                  f"import importlib.metadata as m; print(m.version({server.package!r}))"],
                                 capture_output=True, text=True, timeout=30)
            found[server.name] = out.stdout.strip() or None
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if Path(nginx).exists():
        found["nginx"] = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found["wrk"] = (wrk.stdout or wrk.stderr).strip().splitlines()[0] if (wrk.stdout or wrk.stderr) else None
    if shutil.which("h2load"):
        h2load = subprocess.run(["h2load", "--version"], capture_output=True, text=True, timeout=30)
        found["h2load"] = h2load.stdout.strip() or None
    return found


# --- main ------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run (10)")
    parser.add_argument("--runs", type=int, default=3,
                        help="rounds; in each, every server of a scenario takes one load run in turn; "
                             "the median counts (3)")
    parser.add_argument("--only", help="scenarios, comma-separated (default: all but the plugins'): "
                        f"{','.join([*SCENARIOS, *PLUGIN_SCENARIOS, *SCENARIO_GROUPS])}")
    parser.add_argument("--servers", help=f"servers, comma-separated: {','.join(SERVERS)}")
    parser.add_argument("--quick", action="store_true", help="smoke check: --duration 3 --runs 1")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="JSON results file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.runs = 3, 1
    for option, known in (("only", {**SCENARIOS, **PLUGIN_SCENARIOS}), ("servers", SERVERS)):
        value = getattr(args, option)
        names = [n.strip() for n in value.split(",") if n.strip()] if value else list(known)
        if option == "only" and not value:
            names = list(SCENARIOS)
        if option == "only":
            names = [member for name in names for member in SCENARIO_GROUPS.get(name, [name])]
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"--{option}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
        setattr(args, option, names)
    return args


def run_plugin_scenarios(names: list, duration: int, runs: int, tmp: Path) -> tuple[dict, list]:
    """The plugins' scenarios among `names`, each script once for its scenarios, `runs` rounds
    (the medians count): (results by scenario, PASS/MISS lines)."""
    results, lines = {}, []
    for script in dict.fromkeys(PLUGIN_SCENARIOS[name] for name in names):
        asked = [name for name in names if PLUGIN_SCENARIOS[name] == script]
        output = tmp / f"{script}.json"
        print(f"\n## {', '.join(asked)} (bench/{script}, {sys.executable})", flush=True)
        try:
            # Five measurements a round in a throughput scenario, each after a one-second warm-up.
            done = subprocess.run([sys.executable, str(BENCH / script), "--duration", str(duration),
                                   "--rounds", str(runs), "--only", ",".join(asked), "--json", str(output)],
                                  cwd=BENCH, timeout=60 + 8 * (duration + 2) * runs * len(asked))
            failed = done.returncode != 0 or not output.exists()
        except subprocess.TimeoutExpired:
            failed = True
        if failed:
            lines += [f"N/A   {name} (bench/{script} failed: run this file with the development venv's "
                      "python, see bench/README.md)" for name in asked]
            continue
        measured = json.loads(output.read_text())
        results.update(measured)
        lines += [f"{'PASS' if passed else 'MISS'}  {label}: {detail}"
                  for name in asked for label, passed, detail in measured[name]["targets"]]
    return results, lines


def main(argv=None) -> int:
    args = parse_args(argv)
    plugin_names = [name for name in args.only if name in PLUGIN_SCENARIOS]
    args.only = [name for name in args.only if name in SCENARIOS]
    # The ws tool is ws_echo_client.py in the peers venv, not a binary on PATH.
    tools = {"wrk"} | ({"taskset"} if args.only else set())
    tools |= {SCENARIOS[name].tool.split("-")[0] for name in args.only} - {"ws"}
    for tool in sorted(tools):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run `bash {BENCH}/setup.sh` first")
    cpus = sorted(os.sched_getaffinity(0))
    cpus = (cpus[0], cpus[1] if len(cpus) > 1 else cpus[0])
    if cpus[0] == cpus[1]:
        print("warning: one CPU only; server and wrk share it", file=sys.stderr)
    if args.only:
        print(f"server on CPU {cpus[0]}, load client on CPU {cpus[1]}; wrk -t1 -c{CONNECTIONS}, "
              f"h2load -c{H2_CONNECTIONS} -m{H2_STREAMS}, ws echo -c{WS_CONNECTIONS}; "
              f"{args.duration}s x {args.runs} rounds, the servers taking turns in each (median)")
        unpinned = [name for name in args.only if not SCENARIOS[name].pinned]
        if unpinned:
            print(f"{', '.join(unpinned)}: nothing pinned, servers and load client share every CPU")

    all_results: dict = {}
    with tempfile.TemporaryDirectory(prefix="skitai-bench-") as tmp_name:
        tmp = Path(tmp_name)
        make_static_dir(tmp)
        for scen_name in args.only:
            scenario = SCENARIOS[scen_name]
            results = measure_scenario(scenario, [n for n in scenario.servers if n in args.servers], args, tmp, cpus)
            all_results[scen_name] = results
            print_table(scenario, results)
        plugin_results, plugin_targets = run_plugin_scenarios(plugin_names, args.duration, args.runs, tmp)

    targets = check_targets(all_results) + plugin_targets
    print("\n## targets")
    print("\n".join(targets))

    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "method": {"duration_s": args.duration, "runs": args.runs, "connections": CONNECTIONS,
                   "h2load": {"connections": H2_CONNECTIONS, "streams": H2_STREAMS},
                   "ws_echo": {"connections": WS_CONNECTIONS, "message_bytes": WS_MESSAGE_SIZE},
                   "server_cpu": cpus[0], "wrk_cpu": cpus[1]},
        "versions": versions(),
        "scenarios": all_results,
        "plugin_scenarios": plugin_results,
        "targets": targets,
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
