"""Clients and scripts shared by the TLS, forward and privilege tests."""
from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time

import httpx

from skitai.testing import free_port

STARTUP_FAILURE_TIMEOUT = 30


def client_context(ca: str, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context


def handshake(port: int, context: ssl.SSLContext, server_hostname: str = "localhost") -> ssl.SSLSocket:
    """A TLS connection to 127.0.0.1:`port`, handshake done; the caller closes it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(sock, server_hostname=server_hostname)
    except BaseException:
        sock.close()
        raise


def https_get(ca: str, port: int, path: str = "/", **kwargs) -> httpx.Response:
    with httpx.Client(verify=client_context(ca), timeout=10) as client:
        return client.get(f"https://localhost:{port}{path}", **kwargs)


def failed_start(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a script that must refuse to start; its output is in `.stdout`. It gets a free port
    unless `args` name one: a refusal that comes after binding must not depend on whether the
    script's own port (5000) happens to be taken on this machine."""
    if not any(arg.startswith("--port") for arg in args):
        args = (*args, f"--port={free_port()}")
    return subprocess.run([sys.executable, script, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=STARTUP_FAILURE_TIMEOUT, env=env)


def wait_for_output(server, text: str, count: int = 1, timeout: float = 60) -> None:
    """Until `text` appears `count` times in a ServerProcess's output (say, every worker's
    "serving on" line: a signal sent before the master set its handlers would kill it)."""
    deadline = time.monotonic() + timeout
    while server.output.count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not seen {count} times in:\n{server.output}"
        time.sleep(0.05)
