#!/usr/bin/env python3
"""skitai-smtpda's benchmark, run in the development venv (skitai, skitai-smtpda, aiosmtpd and
httpx installed): `python bench/smtpda.py [--messages 2000] [--latency-requests 200]`.

- smtpda-throughput: messages/s from `send()` in requests (`apps/skitai_email_app.py` /spool,
  8 clients at once) through to their delivery in aiosmtpd by the agent `--smtpda` runs: the
  clock runs from the first request to the last message received. Against a plain smtplib loop
  sending the same number of messages of the same size over one connection (the limit: what
  the SMTP server takes from one client that does nothing else).
- smtpda-latency: the median time of a request whose app calls `send()` (the message spooled:
  written, flushed to disk) against one whose app sends the message inline with smtplib
  (connect, send, quit), 1 client, requests one after the other; for reference, a request that
  only composes the message, and the spool's write alone (outside any request, in a folder
  beside the agent's, which does not read it).
- smtpda-latency-tls: the same inline request to a server as mail services run them: TLS from
  the first byte (a trustme certificate, verified) and AUTH, still on the loopback.

aiosmtpd runs in a process of its own and only counts what it receives. Nothing is pinned:
the server, its agent, aiosmtpd and the clients share this machine's cores; compare the ratios
of one run.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import smtplib
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from skitai.testing import ServerProcess, free_port, make_certificates
from skitai_smtpda.lock import AgentLock

APPS = Path(__file__).resolve().parent / "apps"
CLIENTS = 8


def sink(port: int, count, ready, certificates=None) -> None:
    """aiosmtpd that takes every message and counts it; with `certificates`, over TLS from the
    first byte with AUTH required (a submission server as mail services run them)."""
    import logging
    import ssl
    import warnings

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    class Counting:
        async def handle_DATA(self, server, session, envelope):
            with count.get_lock():
                count.value += 1
            return "250 OK"

    # aiosmtpd warns on every connection that AUTH is not bound to STARTTLS: here the whole
    # connection is TLS, and the figures are what matters on the terminal
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    options = {}
    if certificates is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates.cert, certificates.key)
        options = {"ssl_context": context, "auth_required": True, "auth_require_tls": False,
                   "server_hostname": "localhost",
                   "authenticator": lambda *args: AuthResult(success=args[-1].password == b"bench",
                                                             handled=False)}
    controller = Controller(Counting(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    ready.set()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


def wait_count(count, target: int, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while count.value < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count.value} of {target} messages arrived")
        time.sleep(0.005)
    return time.perf_counter()


def smtplib_loop(port: int, messages: list[bytes]) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for message in messages:
            smtp.sendmail("bench@example.com", ["reader@example.com"], message)
    return time.perf_counter() - started


def sample_message() -> bytes:
    """A message as the app composes it, for the smtplib loop (same size, same parts)."""
    from email.message import EmailMessage

    from skitai_smtpda.compose import POLICY

    message = EmailMessage(policy=POLICY)
    message["Subject"], message["From"], message["To"] = "Benchmark message 0", "bench@example.com", \
        "reader@example.com"
    body = "Hello,\n\nthis is message number 0 of the benchmark.\n" + "Some text of a usual mail. " * 20
    message.set_content(body)
    return message.as_bytes()


def median_write(path: str, message: bytes, count: int) -> float:
    """The spool's own cost, outside any request: `Spool.put` of the message, median."""
    from skitai_smtpda.smtpserver import SmtpServer
    from skitai_smtpda.spool import Envelope, Spool, new_id

    spool = Spool(os.path.join(path, "bench-write")).create()
    smtp = SmtpServer.parse("127.0.0.1:25").as_dict()
    times = []
    for _ in range(count):
        envelope = Envelope(new_id(), "bench@example.com", ["reader@example.com"], smtp, 60, 8)
        started = time.perf_counter()
        spool.put(envelope, message)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def median_latency(client: httpx.Client, url: str, count: int) -> float:
    client.get(url).raise_for_status()
    times = []
    for n in range(count):
        started = time.perf_counter()
        client.get(f"{url}?{n}").raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def request_rate(url: str, count: int) -> float:
    """Requests/s of `count` GETs to `url` from CLIENTS threads."""
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CLIENTS)) as client:
        client.get(url).raise_for_status()
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            for answer in pool.map(lambda n: client.get(f"{url}?{n}"), range(count)):
                answer.raise_for_status()
        return count / (time.perf_counter() - started)


def throughput(app: ServerProcess, count, messages: int) -> tuple[float, float]:
    """(delivered/s from the first request to the last delivery, spooling requests/s)."""
    url = app.url("/spool")
    before = count.value
    started = time.perf_counter()
    spooled = request_rate(url, messages)  # its own warm-up request is one more message
    delivered = wait_count(count, before + messages + 1)
    return messages / (delivered - started), spooled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    count = multiprocessing.Value("i", 0)
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=sink, args=(port, count, ready), daemon=True)
    server.start()
    ready.wait(30)
    spool = tempfile.mkdtemp(prefix="bench-smtpda-")
    certificates = make_certificates(spool, "localhost", "127.0.0.1")
    tls_port, tls_count, tls_ready = free_port(), multiprocessing.Value("i", 0), multiprocessing.Event()
    tls_server = multiprocessing.Process(target=sink, args=(tls_port, tls_count, tls_ready, certificates),
                                         daemon=True)
    tls_server.start()
    tls_ready.wait(30)
    env = {"BENCH_SMTP": f"127.0.0.1:{port}", "SKITAI_SMTPDA_SPOOL": spool,
           "BENCH_SMTP_TLS": f"localhost:{tls_port}", "BENCH_CA": certificates.ca}
    try:
        with ServerProcess(str(APPS / "skitai_email_app.py"), "--smtpda", env=env) as app:
            while AgentLock(spool).holder() is None:
                time.sleep(0.05)
            message = sample_message()
            rows = []
            for _ in range(args.runs):
                delivered, spooled = throughput(app, count, args.messages)
                compose_only = request_rate(app.url("/compose"), args.messages)
                limit = args.messages / smtplib_loop(port, [message] * args.messages)
                rows.append((delivered, spooled, compose_only, limit, delivered / limit))
            medians = [statistics.median(column) for column in zip(*rows, strict=True)]
            delivered, spooled, compose_only, limit, ratio = medians
            print(f"smtpda-throughput ({args.messages} messages, {CLIENTS} clients, median of {args.runs}): "
                  f"delivered {delivered:,.0f}/s from the first request; plain smtplib loop {limit:,.0f}/s: "
                  f"{ratio:.2f}x the limit. Requests that spool {spooled:,.0f}/s, requests that only "
                  f"compose {compose_only:,.0f}/s")
            with httpx.Client(timeout=30) as client:
                spool_latency = median_latency(client, app.url("/spool"), args.latency_requests)
                inline_latency = median_latency(client, app.url("/inline"), args.latency_requests)
                compose_latency = median_latency(client, app.url("/compose"), args.latency_requests)
                tls_latency = median_latency(client, app.url("/inline-tls"), args.latency_requests)
            write = median_write(spool, message, args.latency_requests)
            print(f"smtpda-latency (median of {args.latency_requests}): request with send() "
                  f"{spool_latency * 1000:.2f} ms, with smtplib inline {inline_latency * 1000:.2f} ms: "
                  f"{spool_latency / inline_latency:.2f}x ({'PASS' if spool_latency < inline_latency else 'MISS'}: "
                  f"send() faster than inline); composing only {compose_latency * 1000:.2f} ms; the spool's write "
                  f"(write, fsync, rename) alone {write * 1000:.2f} ms")
            print(f"smtpda-latency-tls: smtplib inline over implicit TLS with AUTH {tls_latency * 1000:.2f} ms: "
                  f"send() takes {spool_latency / tls_latency:.2f}x that "
                  f"({'PASS' if spool_latency < tls_latency else 'MISS'})")
    finally:
        holder = AgentLock(spool).holder()
        if holder and holder > 0:
            os.kill(holder, signal.SIGTERM)
        server.terminate()
        tls_server.terminate()


if __name__ == "__main__":
    main()
