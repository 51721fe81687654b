"""Servers for the reverse proxy's tests: a Skitai proxy on a thread with the gateway plugin,
members under gunicorn, waitress or on a Skitai thread, and raw-socket members that answer as told.

A module of its own (not conftest) so test modules can import it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

from skitai.testing import ServerThread, free_port, stop_process, wait_for_port
from skitai_gateway import plugin

HERE = os.path.dirname(os.path.abspath(__file__))


def proxy_server(mounts: dict[str, str], aliases: dict[str, list[str]], kind: str = "http",
                 http2: bool = False, **settings) -> ServerThread:
    """A Skitai server with the gateway plugin, `aliases` ({"@name": [members]}) declared and
    `mounts` ({"/point": "@name[/base]"}) mounted."""
    server = ServerThread(**settings)
    server.kernel.pm.register(plugin)
    plugin.skitai_register_backends(backends=server.kernel.backends)
    plugin.skitai_register_adapters(adapters=server.kernel.adapters)
    if http2:
        from skitai_http2 import plugin as h2plugin
        h2plugin.skitai_register_protocols(protocols=server.kernel.protocols)
    for name, members in aliases.items():
        server.kernel.aliases.add(name, kind, members)
    for point, target in mounts.items():
        server.mount(point, target)
    return server


class Gunicorn:
    """`gunicorn proxymember:app` on a free port (sync workers), stopped by `close()`."""

    def __init__(self, workers: int = 2, worker_class: str = "gthread", threads: int = 4) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--chdir", HERE, "-b", f"127.0.0.1:{self.port}",
             "-w", str(workers), "-k", worker_class, "--threads", str(threads), "--keep-alive", "30",
             "--log-level", "warning", "proxymember:app"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 20, self.process)

    @property
    def member(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        stop_process(self.process)


class Waitress:
    """`waitress-serve proxymember:app` on a free port (4 threads), stopped by `close()`."""

    def __init__(self, threads: int = 4) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{self.port}", f"--threads={threads}",
             "proxymember:app"], cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 20, self.process)

    member = Gunicorn.member
    close = Gunicorn.close


class RawMember:
    """A member on a raw socket: each connection's bytes are kept in `received` (one entry per
    connection) and answered once, with `respond(data_so_far)`'s bytes as soon as it returns
    some (None: read more); the connection is read on until the proxy closes it.
    It parses nothing itself: a lenient server, as smuggling needs."""

    def __init__(self, respond, close: bool = False, close_on_next: bool = False) -> None:
        self.respond = respond
        self.close_after_answer = close  # close each connection right after its answer
        # close an answered connection, unanswered, when the next request arrives on it (what
        # a member whose keep-alive timeout strikes as the request comes in does)
        self.close_on_next = close_on_next
        self.received: list[bytes] = []
        self.ended = 0  # connections that ended (the proxy closed them, or the member did)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def member(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._converse(conn)
        finally:
            self.ended += 1

    def _converse(self, conn: socket.socket) -> None:
        index = len(self.received)
        self.received.append(b"")
        conn.settimeout(10)
        answered = False
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if answered and self.close_on_next:
                    return
                self.received[index] += data
                answer = None if answered else self.respond(self.received[index])
                if answer is not None:
                    answered = True
                    try:
                        conn.sendall(answer)
                    except OSError:
                        return
                    if self.close_after_answer:
                        return

    def close(self) -> None:
        self._closing = True
        self.sock.close()
