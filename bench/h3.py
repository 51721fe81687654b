#!/usr/bin/env python3
"""HTTP/3 benchmarks, run in the development venv (skitai, skitai-http2, skitai-http3, uvloop and
hypercorn installed; h2load from nghttp2-client): `python bench/h3.py [--duration 10] [--runs 3]`.

- h3-hello: requests/s of `GET /hello` over HTTP/3, loaded by an aioquic client in this process
  (`skitai_http3.testing`: 10 connections x 10 concurrent streams, each stream asking again as
  soon as it is answered); failed requests are counted. Against hypercorn's HTTP/3
  (`--quic-bind`), one worker and two, and against Skitai's own HTTP/2 over TLS (h2load -c 10
  -m 10 on the same Skitai server). Curl from Debian has no HTTP/3, and h2load no QUIC.
- h3-clients: 100 clients at once, each on a connection of its own making 3 requests, against
  one worker and two: how many clients failed (hypercorn's workers share one UDP socket, so a
  datagram may reach a worker that does not hold its connection).
- h3-large: one 256 MiB WSGI response body (`apps/large.py`) over HTTP/3, MB/s; the same
  against hypercorn and over Skitai's HTTP/2 over TLS (h2load -n 1).

Each server runs as its own process with the app's thread pool (Skitai threads=4) and is
measured `--runs` times; the medians and the ratios of one run are what count: the load client
and the servers share this machine's cores.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from skitai.testing import ServerProcess, make_certificates, wait_for_port
from skitai_http3.testing import h3_connect

BENCH = Path(__file__).resolve().parent
APPS = BENCH / "apps"
CONNECTIONS, STREAMS = 10, 10
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
                                                          "H3_QUIC": str(quic), "H3_WORKERS": str(workers)})


async def h3_hello(quic: int, ca: str, duration: float) -> tuple[float, int, int]:
    """(requests/s, answered, failed) of CONNECTIONS x STREAMS loops for `duration` seconds."""
    answered = failed = 0
    deadline = time.monotonic() + duration

    async def stream(client):
        nonlocal answered, failed
        while time.monotonic() < deadline:
            try:
                response = await client.request("GET", "/hello", timeout=10)
                if response.status == 200:
                    answered += 1
                else:
                    failed += 1
            except Exception:
                failed += 1
                return

    async def connection():
        nonlocal failed
        try:
            async with h3_connect("127.0.0.1", quic, cafile=ca) as client:
                await asyncio.gather(*(stream(client) for _ in range(STREAMS)))
        except Exception:
            failed += STREAMS  # no connection: every stream of it failed
    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return answered / (time.monotonic() - started), answered, failed


async def h3_clients(quic: int, ca: str, count: int = 100) -> tuple[float, int]:
    """(seconds, failed clients) of `count` concurrent clients making 3 requests each."""
    async def one():
        async with h3_connect("127.0.0.1", quic, cafile=ca) as client:
            for _ in range(3):
                if (await client.request("GET", "/hello", timeout=20)).status != 200:
                    raise RuntimeError("not 200")
    started = time.monotonic()
    results = await asyncio.gather(*(asyncio.wait_for(one(), 40) for _ in range(count)), return_exceptions=True)
    return time.monotonic() - started, sum(result is not None for result in results)


async def h3_large(quic: int, ca: str) -> tuple[float, bool]:
    """(MB/s, complete) of one LARGE MiB download."""
    async with h3_connect("127.0.0.1", quic, cafile=ca) as client:
        started = time.monotonic()
        response = await client.request("GET", f"/large/{LARGE}m", sink=lambda data: None, timeout=900)
        elapsed = time.monotonic() - started
    complete = response.status == 200 and response.received == LARGE * 1024 * 1024
    return response.received / elapsed / 1e6, complete


def h2load(url: str, *args: str, timeout: float) -> str:
    return subprocess.run(["h2load", *args, url], capture_output=True, text=True, timeout=timeout).stdout


def h2_hello(port: int, duration: float) -> tuple[float, int, int]:
    output = h2load(f"https://127.0.0.1:{port}/hello", "-c", str(CONNECTIONS), "-m", str(STREAMS),
                    "-D", str(int(duration)), timeout=duration + 60)
    rate = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output).group(1))
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     output)
    return rate, int(done.group(2)), int(done.group(3)) + int(done.group(4))


def h2_large(port: int) -> tuple[float, bool]:
    output = h2load(f"https://127.0.0.1:{port}/large/{LARGE}m", "-n", "1", "-c", "1", timeout=900)
    seconds = re.search(r"finished in ([\d.]+)(m?s)", output)
    elapsed = float(seconds.group(1)) / (1000 if seconds.group(2) == "ms" else 1)
    ok = "1 succeeded" in output
    return LARGE * 1024 * 1024 / elapsed / 1e6, ok


def measure(label: str, runs: int, one) -> dict:
    results = [one() for _ in range(runs)]
    values = [result[0] for result in results]
    median = statistics.median(values)
    # the last item of a result: a count of failed requests, or whether the transfer completed
    failures = sum((not result[-1]) if isinstance(result[-1], bool) else result[-1] for result in results)
    print(f"  {label:28} {median:10.1f}   runs {', '.join(f'{v:.1f}' for v in values)}   failures {failures}",
          flush=True)
    return {"median": median, "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="h3-hello,h3-clients,h3-large")
    options = parser.parse_args()
    scenarios = options.only.split(",")
    certs = make_certificates(tempfile.mkdtemp(prefix="h3bench"))
    results: dict[str, dict] = {}
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        run = asyncio.run
    servers = [("skitai", lambda quic: skitai(certs, quic, 1)), ("skitai-w2", lambda quic: skitai(certs, quic, 2)),
               ("hypercorn", lambda quic: Hypercorn("hello:app", certs, quic, 1)),
               ("hypercorn-w2", lambda quic: Hypercorn("hello:app", certs, quic, 2))]
    if "h3-hello" in scenarios:
        print(f"h3-hello: requests/s, {CONNECTIONS} connections x {STREAMS} streams, {options.duration:.0f} s")
        for name, make in servers:
            quic = free_udp_port()
            with make(quic) as server:
                run(h3_hello(quic, certs.ca, 1.0))  # warm-up
                results[f"h3-hello {name}"] = measure(
                    f"{name} (h3)", options.runs, lambda quic=quic: run(h3_hello(quic, certs.ca, options.duration)))
                if name == "skitai":
                    results["h3-hello skitai-h2"] = measure(
                        "skitai (h2 over TLS, h2load)", options.runs, lambda: h2_hello(server.port, options.duration))
    if "h3-clients" in scenarios:
        print("h3-clients: seconds for 100 concurrent clients x 3 requests, failed clients")
        for name, make in servers:
            quic = free_udp_port()
            with make(quic):
                results[f"h3-clients {name}"] = measure(f"{name} (h3)", 1,
                                                        lambda quic=quic: run(h3_clients(quic, certs.ca)))
    if "h3-large" in scenarios:
        print(f"h3-large: MB/s, one {LARGE} MiB response")
        for name, make in (servers[0], (servers[2][0], lambda quic: Hypercorn("large:app", certs, quic, 1))):
            quic = free_udp_port()
            with make(quic) as server:
                results[f"h3-large {name}"] = measure(f"{name} (h3)", options.runs,
                                                      lambda quic=quic: run(h3_large(quic, certs.ca)))
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
