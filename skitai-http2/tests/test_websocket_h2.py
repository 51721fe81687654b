"""WebSocket over HTTP/2 (RFC 8441): the server announces SETTINGS_ENABLE_CONNECT_PROTOCOL, an
extended CONNECT reaches the same `@skitai.websocket` views as an HTTP/1.1 upgrade, and the
stream carries the WebSocket with HTTP/2 flow control, beside ordinary requests."""
from __future__ import annotations

import threading
import time

import pytest
from apps import hello
from h2peer import Client, split_frames
from h2ws import H2WebSocket
from hyperframe.frame import DataFrame, GoAwayFrame
from wsproto.events import CloseConnection, Pong

import skitai


@skitai.websocket(60)
def echo(environ, start_response):
    environ["websocket"].send(f"{environ['REQUEST_METHOD']} {environ['SERVER_PROTOCOL']}")
    while True:
        message = yield
        if not message:
            return
        yield message


@skitai.websocket("message", 60)
def per_message(environ, start_response):
    environ["websocket"].send("got " + environ["websocket.message"])


MOUNTS = (("/ws", echo), ("/per", per_message), ("/", hello))


@pytest.fixture
def server(serve):
    return serve(*MOUNTS)


@pytest.fixture
def client(server):
    client = Client(server.port)
    yield client
    client.close()


def test_the_server_announces_extended_connect_and_echoes(client):
    ws = H2WebSocket(client, "/ws")
    assert ws.connect_protocol == 1
    assert ws.status == 200 and "sec-websocket-accept" not in ws.headers
    assert ws.receive() == "GET HTTP/2.0"  # the app sees the GET an HTTP/1.1 client sends
    ws.send_text("hello")
    assert ws.receive() == "hello"
    assert ws.close(1000).code == 1000
    ws.wait_end()


def test_per_message_style_over_http2(client):
    ws = H2WebSocket(client, "/per")
    ws.send_text("x")
    assert ws.receive() == "got x"


def test_messages_larger_than_the_stream_window_both_ways(client):
    ws = H2WebSocket(client, "/ws")
    ws.receive()
    big = "z" * (900 * 1024)  # past the server's 256 KiB stream window and h2's 64 KiB default
    ws.send_text(big)
    assert ws.receive() == big


def test_ping_gets_pong(client):
    ws = H2WebSocket(client, "/ws")
    ws.receive()
    ws.ping(b"p1")
    ws._pump(lambda: any(isinstance(event, Pong) for event in ws.events))
    assert [event.payload for event in ws.events if isinstance(event, Pong)] == [b"p1"]


def test_websockets_and_requests_share_one_connection(client):
    sockets = [H2WebSocket(client, "/ws") for _ in range(5)]
    for index, ws in enumerate(sockets):
        ws.receive()
        ws.send_text(f"m{index}")
    stream_id = client.request("/plain")
    headers, body = client.response(stream_id)
    assert body == b"HTTP/2.0 GET 127.0.0.1:%d" % client.port
    assert [ws.receive() for ws in sockets] == [f"m{index}" for index in range(5)]


def test_a_plain_route_answers_the_connect_as_a_request(client):
    ws = H2WebSocket(client, "/plain")
    ws.wait_end()
    assert ws.status == 200 and ws.body.startswith(b"HTTP/2.0 GET")


def test_the_app_ending_closes_the_websocket_and_the_stream(client):
    ws = H2WebSocket(client, "/ws")
    ws.receive()
    ws.send_text("")  # the spec's generator returns on an empty message
    assert ws.wait_close().code == 1000
    ws.send(CloseConnection(1000))  # answer the close: the server ends the stream
    ws.wait_end()


def test_a_reset_stream_ends_the_websocket_only(client):
    ws = H2WebSocket(client, "/ws")
    ws.receive()
    client.conn.reset_stream(ws.stream_id)
    client.flush()
    other = H2WebSocket(client, "/ws")
    other.receive()
    other.send_text("still here")
    assert other.receive() == "still here"


def test_a_graceful_stop_closes_with_1001_and_goaway(serve):
    """Read as raw frames: h2's client refuses every frame after a GOAWAY, which a server may
    well send (the streams in flight go on)."""
    server = serve(*MOUNTS)
    client = Client(server.port)
    try:
        ws = H2WebSocket(client, "/ws")
        ws.receive()
        stopper = threading.Thread(target=server.__exit__, args=(None, None, None))
        stopper.start()
        buffer, frames = b"", []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(isinstance(f, DataFrame) for f in frames):
            data = client.sock.recv(65536)
            if not data:
                break
            parsed, buffer = split_frames(buffer + data)
            frames += parsed
        stopper.join(20)
        assert not stopper.is_alive()
        assert isinstance(frames[0], GoAwayFrame) and frames[0].error_code == 0
        close = next(f for f in frames if isinstance(f, DataFrame) and f.stream_id == ws.stream_id)
        assert close.data[:4] == b"\x88\x16\x03\xe9" and close.data[4:] == b"server shutting down"
    finally:
        client.close()
