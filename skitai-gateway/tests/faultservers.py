"""Misbehaving upstreams on real sockets, for the fault tests: each `FaultServer` listens on
127.0.0.1 and treats every connection with one behaviour, on a thread of its own:

* `reset_mid_body`: announces 1000 bytes, sends 10, then resets the connection (RST);
* `silent`: reads the request and never answers;
* `trickle`: answers headers, then one body byte every 0.1 s, forever;
* `endless`: a chunked body, sent as fast as the peer takes it, forever;
* `garbage`: answers bytes that are not HTTP.

After its behaviour (or while it goes on), the server notes when the peer closed the connection
(`peer_closed`, set for every connection it accepted): the proof that the gateway let go of it.
"""
from __future__ import annotations

import socket
import struct
import threading
import time

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
LIMIT = 30.0  # no behaviour goes on longer than this: the test's servers never outlive it by much


class FaultServer:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = getattr(self, behaviour)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.closed_by_peer = 0
        self.condition = threading.Condition()
        self._stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._stopping.set()
        self.sock.close()

    def wait_peer_closed(self, count: int = 1, timeout: float = 10.0) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: self.closed_by_peer >= count, timeout)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.condition:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(LIMIT)
        with conn:
            try:
                _read_request(conn)
                if self.behaviour(conn) is not False:
                    _wait_for_eof(conn)
                peer_closed = True
            except OSError:  # the peer reset or closed while we wrote: it let go too
                peer_closed = not self._stopping.is_set()
            if peer_closed:
                with self.condition:
                    self.closed_by_peer += 1
                    self.condition.notify_all()

    # behaviours: return False when the connection is already gone
    def reset_mid_body(self, conn):
        conn.sendall(HEADERS + b"Content-Length: 1000\r\n\r\n" + b"x" * 10)
        time.sleep(0.1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False

    def silent(self, conn):
        return None

    def trickle(self, conn):
        conn.sendall(HEADERS + b"Content-Length: 100000\r\n\r\n")
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline:
            conn.sendall(b" ")
            time.sleep(0.1)

    def endless(self, conn):
        conn.sendall(HEADERS + b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline:
            conn.sendall(chunk)

    def garbage(self, conn):
        conn.sendall(b"SPAM SPAM SPAM\r\nnot: http\r\n\r\n")


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionResetError("closed before a request")
        data += chunk


def _wait_for_eof(conn: socket.socket) -> None:
    while conn.recv(65536):
        pass
