"""WebSocket clients that misbehave over time, with raw sockets: one that never answers the
server's close frame, and one that stops reading while the app keeps sending."""
from __future__ import annotations

import socket
import threading
import time

from rawhttp import websocket_handshake

import skitai

TIMEOUT = 15
sent = []
failures = []


@skitai.websocket(60)
def closes_at_once(environ, start_response):
    yield "bye"
    return


@skitai.websocket(60)
def floods(environ, start_response):
    ws = environ["websocket"]
    message = yield
    try:
        while len(sent) < 100000:
            ws.send(message * 1000)
            sent.append(1)
    except skitai.ConnectionClosed as error:
        failures.append(error)


def handshake(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(websocket_handshake(path, b"t"))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    return sock


def test_a_client_that_never_answers_the_close_is_dropped(serve):
    server = serve(("/bye", closes_at_once))
    with handshake(server.port, "/bye") as sock:
        data, started = b"", time.monotonic()
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        waited = time.monotonic() - started
    assert data == b"\x81\x03bye" + b"\x88\x02\x03\xe8"  # the reply, then close 1000
    assert waited < TIMEOUT  # closed by the server (after its close timeout), not by ours


def test_a_client_that_stops_reading_is_dropped_and_the_sender_told(serve):
    sent.clear()
    failures.clear()
    server = serve(("/flood", floods), request_timeout=2)
    with handshake(server.port, "/flood") as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        mask = b"\x00\x00\x00\x00"
        sock.sendall(b"\x81\x81" + mask + b"x")  # one message starts the flood; then we read nothing
        deadline = time.monotonic() + TIMEOUT
        while not failures and time.monotonic() < deadline:
            time.sleep(0.1)
    assert failures, f"the app sent {len(sent)} messages and was never stopped"
    assert len(sent) < 100000
    assert threading.active_count() < 50
