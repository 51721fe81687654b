"""Bodies stream through the reverse proxy both ways with back-pressure: a 256 MiB download to
a client that stops reading, and a 256 MiB upload to a member that does not read yet, pass with
the proxy process's memory (RSS, measured with psutil) growing by a few MB, not by the body."""
import hashlib
import os
import socket
import threading
import time

import psutil
import pytest
from proxyservers import Gunicorn

from skitai.testing import ServerProcess

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 256 * 1024 * 1024
ALLOWED_GROWTH = 24 * 1024 * 1024


@pytest.fixture(scope="module")
def gunicorn():
    server = Gunicorn(workers=1)
    yield server
    server.close()


@pytest.fixture
def proxy(gunicorn):
    with ServerProcess(os.path.join(HERE, "proxyscript.py"), env={"PROXY_MEMBERS": gunicorn.member}) as server:
        yield server


class PeakRss:
    """The highest RSS of a server's processes (its master and the worker that serves) while
    the block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        master = psutil.Process(pid)
        self.processes = [master, *master.children(recursive=True)]
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        return sum(process.memory_info().rss for process in self.processes)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth(self) -> int:
        return self.peak - self.base


def warm_up(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass


def test_a_download_to_a_client_that_stalls_is_held_back_at_the_member(proxy):
    warm_up(proxy.port)
    with PeakRss(proxy.process.pid) as rss, socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(f"GET /big?size={SIZE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        received = bytearray(sock.recv(1 << 20))
        time.sleep(2.0)  # the member could send it all meanwhile: the proxy must not take it
        stalled_growth = rss.peak - rss.base
        while chunk := sock.recv(1 << 20):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {SIZE}".encode() in head
    assert len(body) == SIZE and body.count(b"x") == SIZE
    assert stalled_growth < ALLOWED_GROWTH, stalled_growth
    assert rss.growth < ALLOWED_GROWTH, rss.growth


def test_an_upload_to_a_member_that_reads_late_is_held_back_at_the_client(proxy):
    warm_up(proxy.port)
    piece = os.urandom(1 << 20)
    digest = hashlib.sha256()
    for _ in range(SIZE // len(piece)):
        digest.update(piece)
    with PeakRss(proxy.process.pid) as rss, socket.create_connection(("127.0.0.1", proxy.port), timeout=60) as sock:
        sock.sendall(f"POST /sink?wait=2 HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n"
                     f"Connection: close\r\n\r\n".encode())
        for _ in range(SIZE // len(piece)):
            sock.sendall(piece)
        answer = bytearray()
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert f'"size": {SIZE}'.encode() in answer and digest.hexdigest().encode() in answer
    assert rss.growth < ALLOWED_GROWTH, rss.growth
