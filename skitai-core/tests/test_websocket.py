"""WebSocket over HTTP/1.1 with a real client (the `websockets` library) and raw sockets for
what it would never send: the spec's generator and per-message styles, plain WSGI and Flask,
direct sends, text and binary, ping/pong, close codes, limits, timeouts, permessage-deflate,
back-pressure and graceful stops."""
from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
from rawhttp import exchange, status_of, websocket_handshake
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

import skitai
from skitai.testing import wait_for

TIMEOUT = 10


def ws_connect(server, path="/ws", **options):
    options.setdefault("open_timeout", TIMEOUT)
    options.setdefault("close_timeout", TIMEOUT)
    return connect(f"ws://127.0.0.1:{server.port}{path}", **options)


def closed_code(ws) -> int:
    """Read until the server closes; the code it closed with."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=TIMEOUT)
    return closed.value.rcvd.code if closed.value.rcvd else 1006


# apps
@skitai.websocket(60)
def echo(environ, start_response):
    while True:
        message = yield
        if not message:
            return
        yield "ECHO:" + message if isinstance(message, str) else message


@skitai.websocket(60)
def chatty(environ, start_response):
    ws = environ["websocket"]
    ws.send("welcome")                              # before the first message, direct
    yield "and hello"                               # a reply before any message
    while True:
        message = yield
        if message is None:
            return
        if message == "list":
            yield ["OK", "Task 1 started", "Check later, please"]
        elif message == "iter":
            yield (f"item {n}" for n in range(3))
        elif message == "direct":
            ws.send("one")
            ws.send(b"two")
        elif message == "close":
            ws.close(4001, "asked to")
        elif message == "fail":
            raise RuntimeError("the app failed")
        elif message == "bye":
            return


ended = []


@skitai.websocket(60)
def records_the_end(environ, start_response):
    try:
        while True:
            message = yield
            if message is None:
                ended.append("None")
                return
            yield message
    finally:
        ended.append("closed")


def opened(environ=None, start_response=None):
    return "opened"


closes = []


def on_close(environ=None, start_response=None):
    closes.append(True)


@skitai.websocket("message", 60, onopen=opened, onclose=on_close)
def per_message(environ, start_response):
    from urllib.parse import parse_qs

    message = parse_qs(environ["QUERY_STRING"])["message"][0]
    environ["websocket"].send("You said," + message)
    environ["websocket"].send("I said acknowledge")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"raw={environ['websocket.message']!r} q={parse_qs(environ['QUERY_STRING']).get('room')}".encode()]


@skitai.websocket(1)
def short_idle(environ, start_response):
    while True:
        message = yield
        if message is None:
            return
        yield message


@skitai.websocket(60)
def slow(environ, start_response):
    while True:
        message = yield
        if message is None:
            return
        time.sleep(0.01)
        yield message


def plain(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain " + environ["PATH_INFO"].encode()]


APPS = (("/ws", echo), ("/chatty", chatty), ("/ends", records_the_end), ("/per", per_message),
        ("/idle", short_idle), ("/slow", slow), ("/", plain))


@pytest.fixture
def server(serve):
    return serve(*APPS)


# the generator style
def test_echo_text_and_binary(server):
    with ws_connect(server) as ws:
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "ECHO:hello"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=TIMEOUT) == b"\x00\xff"
        ws.send("é" * 70000)  # past 64 KiB: several reads, 8-byte length
        assert ws.recv(timeout=TIMEOUT) == "ECHO:" + "é" * 70000


def test_an_empty_message_ends_it_as_the_spec_s_example_says(server):
    with ws_connect(server) as ws:
        ws.send("")
        assert closed_code(ws) == 1000


def test_replies_lists_iterators_and_direct_sends(server):
    with ws_connect(server, "/chatty") as ws:
        assert [ws.recv(timeout=TIMEOUT) for _ in range(2)] == ["welcome", "and hello"]
        ws.send("list")
        assert [ws.recv(timeout=TIMEOUT) for _ in range(3)] == ["OK", "Task 1 started", "Check later, please"]
        ws.send("iter")
        assert [ws.recv(timeout=TIMEOUT) for _ in range(3)] == ["item 0", "item 1", "item 2"]
        ws.send("direct")
        assert [ws.recv(timeout=TIMEOUT) for _ in range(2)] == ["one", b"two"]
        ws.send("bye")
        assert closed_code(ws) == 1000


def test_the_app_closes_with_its_own_code(server):
    with ws_connect(server, "/chatty") as ws:
        ws.send("close")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=TIMEOUT)
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "asked to")


def test_an_app_error_closes_with_1011(server):
    with ws_connect(server, "/chatty") as ws:
        ws.send("fail")
        assert closed_code(ws) == 1011


def test_the_generator_hears_none_when_the_client_closes(server):
    ended.clear()
    with ws_connect(server, "/ends") as ws:
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "x"
    wait_for(lambda: ended == ["None", "closed"], TIMEOUT)


def test_the_generator_is_closed_when_the_client_vanishes(server):
    ended.clear()
    with ws_connect(server, "/ends") as ws:
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "x"
        ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: 1006
    wait_for(lambda: ended == ["None", "closed"], TIMEOUT)


# the per-message style
def test_per_message_calls_with_the_message_as_a_query_parameter(server):
    closes.clear()
    with ws_connect(server, "/per?room=7") as ws:
        assert ws.recv(timeout=TIMEOUT) == "opened"
        ws.send("hi & bye")
        assert [ws.recv(timeout=TIMEOUT) for _ in range(3)] == [
            "You said,hi & bye", "I said acknowledge", "raw='hi & bye' q=['7']"]
    wait_for(lambda: closes == [True], TIMEOUT)


# protocol
def test_ping_is_answered_with_pong(server):
    with ws_connect(server) as ws:
        assert ws.ping(b"are you there").wait(TIMEOUT)


def test_permessage_deflate_is_negotiated_and_used(server):
    with ws_connect(server) as ws:  # the websockets client offers permessage-deflate
        assert [type(ext).__name__ for ext in ws.protocol.extensions] == ["PerMessageDeflate"]
        ws.send("squeeze " * 10000)
        assert ws.recv(timeout=TIMEOUT) == "ECHO:" + "squeeze " * 10000
    with ws_connect(server, compression=None) as ws:
        assert ws.protocol.extensions == []
        ws.send("plain")
        assert ws.recv(timeout=TIMEOUT) == "ECHO:plain"


def test_a_message_over_the_limit_closes_with_1009(serve):
    server = serve(("/ws", echo), websocket_max_message_size=1000)
    with ws_connect(server, compression=None) as ws:
        ws.send("x" * 999)
        assert ws.recv(timeout=TIMEOUT) == "ECHO:" + "x" * 999
        ws.send("x" * 1001)
        assert closed_code(ws) == 1009
    with ws_connect(server) as ws:  # compressed: the limit holds for the inflated size
        ws.send("x" * 5000)
        assert closed_code(ws) == 1009


def test_idle_timeout_closes_with_1001(server):
    with ws_connect(server, "/idle", ping_interval=None) as ws:
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "x"
        started = time.monotonic()
        assert closed_code(ws) == 1001
        assert time.monotonic() - started < TIMEOUT


def test_many_idle_websockets_hold_no_thread(serve):
    server = serve(("/ws", echo), threads=2)
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(ws_connect(server)) for _ in range(20)]
        for index, ws in enumerate(sockets):
            ws.send(str(index))
        assert [ws.recv(timeout=TIMEOUT) for ws in sockets] == [f"ECHO:{index}" for index in range(20)]


def test_a_slow_app_gets_every_message_in_order(server):
    with ws_connect(server, "/slow") as ws:
        for index in range(200):   # far more than the inbox holds: reading pauses, nothing is lost
            ws.send(str(index))
        assert [ws.recv(timeout=TIMEOUT) for _ in range(200)] == [str(index) for index in range(200)]


def test_threads_0_runs_websockets_on_the_loop_thread(serve):
    server = serve(*APPS, threads=0)
    with ws_connect(server, "/chatty") as ws:
        assert [ws.recv(timeout=TIMEOUT) for _ in range(2)] == ["welcome", "and hello"]
        ws.send("direct")
        assert [ws.recv(timeout=TIMEOUT) for _ in range(2)] == ["one", b"two"]
    with ws_connect(server, "/per") as ws:
        assert ws.recv(timeout=TIMEOUT) == "opened"
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "You said,x"


def test_a_graceful_stop_closes_websockets_with_1001(serve):
    server = serve(("/ws", echo))
    with ws_connect(server) as ws:
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "ECHO:x"
        stopper = threading.Thread(target=server.__exit__, args=(None, None, None))
        stopper.start()
        assert closed_code(ws) == 1001
        stopper.join(TIMEOUT + 5)
        assert not stopper.is_alive()


# handshakes that are not accepted
def test_a_plain_request_to_a_websocket_view_gets_426(server):
    response = exchange(server.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 426
    assert b"\r\nUpgrade: websocket\r\n" in response


def test_a_handshake_to_a_plain_app_gets_its_answer_and_the_connection_stays_http(server):
    handshake = websocket_handshake("/other")
    # pipelined behind the handshake: held until its answer shows it is HTTP/1.1 after all
    follow = b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    response = exchange(server.port, handshake + follow)
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert b"plain /other" in response and b"plain /next" in response
    with pytest.raises(InvalidStatus):
        ws_connect(server, "/other")


@pytest.mark.parametrize("headers, status", [
    (b"Sec-WebSocket-Version: 13\r\n", 400),                                  # no key
    (b"Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n", 400),   # short key
    (b"Sec-WebSocket-Key: a2tra2tra2tra2tra2traw==\r\nSec-WebSocket-Version: 8\r\n", 426),
])
def test_invalid_handshakes_get_a_clear_status(server, headers, status):
    response = exchange(server.port, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\n" + headers + b"\r\n")
    assert status_of(response) == status
    if status == 426:
        assert b"Sec-WebSocket-Version: 13\r\n" in response


def test_frames_sent_right_behind_the_handshake_are_not_lost(server):
    handshake = websocket_handshake("/ws", b"q")
    mask = b"\x01\x02\x03\x04"
    payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(b"early"))
    frame = b"\x81\x85" + mask + payload
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(handshake + frame)
        data = b""
        while b"ECHO:early" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


def test_a_protocol_error_closes_with_1002(server):
    response = exchange(server.port, websocket_handshake("/ws", b"e") + b"\x81\x02ab")  # an unmasked client frame
    head, _, frames = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert frames[:2] == b"\x88" + bytes([len(frames) - 2]) and frames[2:4] == (1002).to_bytes(2, "big")
