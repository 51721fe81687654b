#!/usr/bin/env python3
"""HTTP/3 benchmarks, run in the development venv (skitai, skitai-http2, skitai-http3, uvloop and
hypercorn installed; gtlsclient from ngtcp2-client, h2load from nghttp2-client):
`python bench/h3.py [--duration 10] [--runs 3] [--requests 1000]`.

The load client is ngtcp2's example client (`gtlsclient`, C): one process is one QUIC
connection making `-n` requests, as many at once as the server's MAX_STREAMS allows (128 for
either server here: hypercorn's aioquic fixes it, and the Skitai app is given the same, see
`apps/skitai_h3.py`, with a WSGI queue that holds all 1,280 requests where its default 1,024 per
worker answers the rest 503). It prints every response's header lines on stderr; `grep -c` counts the
`:status: 200` ones, so the benchmark's own process does not read megabytes of log in Python.
It does not verify the server's certificate. (An earlier aioquic client in this process took
most of the CPU itself, and the ratios moved between 1.5x and 3.1x from run to run.)

- h3-hello: requests/s of `GET /hello` from 10 connections, each a gtlsclient making
  `--requests` requests, started again as soon as it ends until `--duration` has passed;
  requests/s = requests answered 200 / wall time, failed = requests not answered 200.
  Against hypercorn's HTTP/3 (`--quic-bind`), one worker and two, and against Skitai's own
  HTTP/2 over TLS (h2load -c 10 -m 100 on the same Skitai server, its HTTP/2 stream limit).
- h3-clients: 100 clients at once, each a gtlsclient on a connection of its own making 3
  requests, against one worker and two: how many clients failed (hypercorn's workers share one
  UDP socket, so a datagram may reach a worker that does not hold its connection).
- h3-large: one 256 MiB WSGI response body (`apps/large.py`) over HTTP/3 saved by gtlsclient
  (`--download`, size checked), MB/s; the same against hypercorn and over Skitai's HTTP/2 over
  TLS (h2load -n 1).

Each server runs as its own process with the app's thread pool (Skitai threads=4) and is
measured `--runs` times; the medians and the ratios of one run are what count: the load client
and the servers share this machine's cores (the CPU the clients used is printed with each run).
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from skitai.testing import ServerProcess, make_certificates, wait_for_port

BENCH = Path(__file__).resolve().parent
APPS = BENCH / "apps"
CONNECTIONS = 10
MAX_STREAMS = 128  # aioquic's fixed MAX_STREAMS (hypercorn's), given to Skitai too
H2_STREAMS = 100   # Skitai's HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
CLIENTS = 100
LARGE = 256


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Hypercorn(ServerProcess):
    """hypercorn serving `module:app` over TLS and HTTP/3 (`--quic-bind`)."""

    def __init__(self, app: str, certs, quic: int, workers: int) -> None:
        super().__init__(str(APPS / "hello.py"))
        self.workers = workers
        self.command = [sys.executable, "-m", "hypercorn", "--workers", str(workers), "--certfile", certs.cert,
                        "--keyfile", certs.key, "--bind", f"127.0.0.1:{self.port}",
                        "--quic-bind", f"127.0.0.1:{quic}", "--log-level", "error", app]

    def start(self):
        self.process = subprocess.Popen(self.command, cwd=APPS, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=self.env)
        wait_for_port(self.port, self.startup_timeout, self.process)
        time.sleep(0.5 * self.workers)  # the workers bind the UDP port a moment after TCP
        return self


def skitai(certs, quic: int, workers: int) -> ServerProcess:
    return ServerProcess(str(APPS / "skitai_h3.py"), env={"H3_CERT": certs.cert, "H3_KEY": certs.key,
                                                          "H3_QUIC": str(quic), "H3_WORKERS": str(workers),
                                                          "H3_MAX_STREAMS": str(MAX_STREAMS),
                                                          "H3_MAX_QUEUED": str(CONNECTIONS * MAX_STREAMS)})


def gtlsclient(quic: int, path: str, count: int, *options: str, timeout: float = 300) -> tuple[int, int]:
    """(responses with status 200, exit status) of one gtlsclient connection making `count`
    requests of `path`; killed after `timeout` seconds (exit status -9)."""
    command = ["gtlsclient", "--no-quic-dump", "--exit-on-all-streams-close", "-n", str(count), *options,
               "127.0.0.1", str(quic), f"https://127.0.0.1:{quic}{path}"]
    client = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    counter = subprocess.Popen(["grep", "-c", r"^http: stream 0x[0-9a-f]* \[:status: 200\]$"], stdin=client.stderr,
                               stdout=subprocess.PIPE, text=True)
    client.stderr.close()  # grep holds the pipe now
    try:
        status = client.wait(timeout)
    except subprocess.TimeoutExpired:
        client.kill()
        status = client.wait()
    return int(counter.communicate()[0] or 0), status


class ClientCPU:
    """CPU seconds the load clients (finished child processes) used since the last `take()`."""

    def __init__(self) -> None:
        self.take()

    def take(self) -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        now = usage.ru_utime + usage.ru_stime
        used, self.last = now - getattr(self, "last", now), now
        return used


def h3_hello(quic: int, requests: int, duration: float) -> tuple[float, int, str]:
    """(requests/s, failed requests, note) of CONNECTIONS gtlsclient loops for `duration` seconds.
    A connection is incomplete when it got fewer than `requests` 200s or exited non-zero
    (gtlsclient exits 0 after a handshake timeout: the count of 200s is what tells)."""
    deadline = time.monotonic() + duration
    cpu = ClientCPU()

    def connection() -> tuple[int, int, int]:
        answered = failed = incomplete = 0
        while time.monotonic() < deadline:
            ok, status = gtlsclient(quic, "/hello", requests)
            answered, failed = answered + ok, failed + requests - ok
            incomplete += ok < requests or status != 0
        return answered, failed, incomplete

    started = time.monotonic()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        results = list(pool.map(lambda _: connection(), range(CONNECTIONS)))
    elapsed = time.monotonic() - started
    answered, failed, incomplete = (sum(column) for column in zip(*results, strict=True))
    return answered / elapsed, failed, (f"{elapsed:.1f} s, clients' CPU {cpu.take() / elapsed:.0%} of a core, "
                                        f"{incomplete} connections incomplete")


def h3_clients(quic: int) -> tuple[float, int, str]:
    """(seconds, failed clients, note) of CLIENTS concurrent connections making 3 requests each; a
    client fails unless it gets its three 200s and exits 0."""
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda _: gtlsclient(quic, "/hello", 3, timeout=60), range(CLIENTS)))
    return time.monotonic() - started, sum(ok != 3 or status != 0 for ok, status in results), ""


def h3_large(quic: int) -> tuple[float, int, str]:
    """(MB/s, 0 if the whole body arrived else 1, note) of one LARGE MiB download to a file."""
    folder = tempfile.mkdtemp(prefix="h3large", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    cpu = ClientCPU()
    try:
        started = time.monotonic()
        ok, status = gtlsclient(quic, f"/large/{LARGE}m", 1, "--no-http-dump", f"--download={folder}", timeout=900)
        elapsed = time.monotonic() - started
        path = Path(folder, f"{LARGE}m")
        size = path.stat().st_size if path.exists() else 0
    finally:
        shutil.rmtree(folder)
    complete = ok == 1 and status == 0 and size == LARGE * 1024 * 1024
    note = f"{elapsed:.1f} s, client's CPU {cpu.take() / elapsed:.0%} of a core"
    return size / elapsed / 1e6, int(not complete), note


def h2load(url: str, *args: str, timeout: float) -> str:
    return subprocess.run(["h2load", *args, url], capture_output=True, text=True, timeout=timeout).stdout


def h2_hello(port: int, duration: float) -> tuple[float, int, str]:
    output = h2load(f"https://127.0.0.1:{port}/hello", "-c", str(CONNECTIONS), "-m", str(H2_STREAMS),
                    "-D", str(int(duration)), timeout=duration + 60)
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output).group(1))
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     output)
    return rate, int(done.group(3)) + int(done.group(4)), ""


def h2_large(port: int) -> tuple[float, int, str]:
    output = h2load(f"https://127.0.0.1:{port}/large/{LARGE}m", "-n", "1", "-c", "1", timeout=900)
    seconds = re.search(r"finished in ([\d.]+)(m?s)", output)
    elapsed = float(seconds.group(1)) / (1000 if seconds.group(2) == "ms" else 1)
    return LARGE * 1024 * 1024 / elapsed / 1e6, int("1 succeeded" not in output), ""


def measure(label: str, runs: int, one) -> dict:
    """Run `one()` -> (value, failures, note) `runs` times; print and return the median value and
    the failures summed over the runs."""
    results = [one() for _ in range(runs)]
    values = [value for value, _, _ in results]
    median = statistics.median(values)
    failures = sum(failed for _, failed, _ in results)
    notes = "; ".join(note for _, _, note in results if note)
    print(f"  {label:28} {median:10.1f}   runs {', '.join(f'{v:.1f}' for v in values)}   failures {failures}"
          + (f"   ({notes})" if notes else ""), flush=True)
    return {"median": median, "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000, help="requests per h3-hello connection")
    parser.add_argument("--only", default="h3-hello,h3-clients,h3-large")
    options = parser.parse_args()
    if shutil.which("gtlsclient") is None:
        print("h3.py needs gtlsclient: apt-get install ngtcp2-client (or run bench/setup.sh)", file=sys.stderr)
        return 1
    scenarios = options.only.split(",")
    certs = make_certificates(tempfile.mkdtemp(prefix="h3bench"))
    results: dict[str, dict] = {}
    servers = [("skitai", lambda quic: skitai(certs, quic, 1)), ("skitai-w2", lambda quic: skitai(certs, quic, 2)),
               ("hypercorn", lambda quic: Hypercorn("hello:app", certs, quic, 1)),
               ("hypercorn-w2", lambda quic: Hypercorn("hello:app", certs, quic, 2))]
    if "h3-hello" in scenarios:
        print(f"h3-hello: requests/s, {CONNECTIONS} connections x {options.requests} requests "
              f"({MAX_STREAMS} streams at once), {options.duration:.0f} s")
        for name, make in servers:
            quic = free_udp_port()
            with make(quic) as server:
                gtlsclient(quic, "/hello", 100)  # warm-up
                results[f"h3-hello {name}"] = measure(
                    f"{name} (h3)", options.runs, lambda quic=quic: h3_hello(quic, options.requests, options.duration))
                if name == "skitai":
                    results["h3-hello skitai-h2"] = measure(
                        "skitai (h2 over TLS, h2load)", options.runs, lambda: h2_hello(server.port, options.duration))
    if "h3-clients" in scenarios:
        print(f"h3-clients: seconds for {CLIENTS} concurrent clients x 3 requests, failed clients")
        for name, make in servers:
            quic = free_udp_port()
            with make(quic):
                results[f"h3-clients {name}"] = measure(f"{name} (h3)", 1, lambda quic=quic: h3_clients(quic))
    if "h3-large" in scenarios:
        print(f"h3-large: MB/s, one {LARGE} MiB response")
        for name, make in (servers[0], (servers[2][0], lambda quic: Hypercorn("large:app", certs, quic, 1))):
            quic = free_udp_port()
            with make(quic) as server:
                results[f"h3-large {name}"] = measure(f"{name} (h3)", options.runs, lambda quic=quic: h3_large(quic))
                if name == "skitai":
                    results["h3-large skitai-h2"] = measure("skitai (h2 over TLS, h2load)", options.runs,
                                                            lambda: h2_large(server.port))
    print("ratios (medians of this run):")
    pairs = [("h3-hello skitai", "h3-hello hypercorn", 2.0), ("h3-hello skitai-w2", "h3-hello hypercorn-w2", None),
             ("h3-hello skitai", "h3-hello skitai-h2", None), ("h3-large skitai", "h3-large hypercorn", None),
             ("h3-large skitai", "h3-large skitai-h2", None)]
    for mine, theirs, goal in pairs:
        if mine in results and theirs in results and results[theirs]["median"]:
            ratio = results[mine]["median"] / results[theirs]["median"]
            verdict = "" if goal is None else ("  PASS" if ratio >= goal else "  MISS") + f" (goal >= {goal}x)"
            print(f"  {mine} / {theirs}: {ratio:.2f}x{verdict}")
    failing = {name: result["failures"] for name, result in results.items() if result["failures"]}
    print(f"failures: {failing or 'none'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
