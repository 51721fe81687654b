"""Handlers on the event loop thread over HTTP/1.1: `body.read_async` and `exchange.drain`
(the extension points a proxy relays with), through `skitai.testing.RelayHandler`."""
import os
import select
import socket
import struct
import threading

import pytest
from h1util import split_responses

from skitai.testing import RelayHandler, ServerThread, StartedServers, TunnelEchoHandler, wait_for

UPLOAD = 64 * 1024 * 1024
SMALL_BUFFER = 64 * 1024


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture
def relay():
    handler = RelayHandler()

    servers = StartedServers(ServerThread, handlers=(handler,))
    yield handler, servers(hello)
    servers.stop()


def client_socket(port: int) -> socket.socket:
    """A client with small socket buffers, so what the test can send before a stall is about
    what the server holds, not what the client's kernel holds."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def send_until_stalled(sock: socket.socket, data: bytes, stall: float = 2.0) -> int:
    """Send `data` without reading anything back until the socket stays unwritable for `stall`
    seconds (the server stopped taking it) or all of it went; returns the bytes sent."""
    sock.setblocking(False)
    view, sent = memoryview(data), 0
    try:
        while sent < len(data):
            _, writable, _ = select.select([], [sock], [], stall)
            if not writable:
                break
            try:
                sent += sock.send(view[sent:sent + 65536])
            except BlockingIOError:
                continue
    finally:
        sock.settimeout(10)
    return sent


def read_all(sock: socket.socket, into: bytearray) -> None:
    while chunk := sock.recv(1024 * 1024):
        into += chunk


def upload_head(length: int) -> bytes:
    return (b"POST /relay HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % length)


def test_a_relay_to_a_client_that_does_not_read_stops_taking_the_upload(relay):
    handler, server = relay
    body = os.urandom(UPLOAD)
    with client_socket(server.port) as sock:
        sock.sendall(upload_head(len(body)))
        sent = send_until_stalled(sock, body)
        # Without back-pressure the server would read (and buffer) the whole upload.
        assert sent < UPLOAD // 2
        received = bytearray()
        reader = threading.Thread(target=read_all, args=(sock, received))
        reader.start()
        sock.sendall(memoryview(body)[sent:])
        reader.join(60)
    assert not reader.is_alive()
    ((status, headers, echoed),) = split_responses(bytes(received))
    assert status.startswith(b"HTTP/1.1 200")
    assert echoed == body
    assert handler.outcomes == ["done"]


def test_drain_raises_client_disconnected_when_the_stalled_client_resets(relay):
    handler, server = relay
    with client_socket(server.port) as sock:
        sock.sendall(upload_head(UPLOAD))
        send_until_stalled(sock, b"x" * UPLOAD)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    assert wait_for(lambda: handler.outcomes, timeout=10) == ["drain"]


def test_read_async_raises_client_disconnected_when_the_client_leaves_mid_body(relay):
    handler, server = relay
    with client_socket(server.port) as sock:
        sock.sendall(upload_head(1_000_000) + b"x" * 1000)
        wait_for(lambda: handler.relayed == 1000, timeout=10)
    assert wait_for(lambda: handler.outcomes, timeout=10) == ["read"]


def test_a_relay_streams_a_chunked_upload_back(relay):
    handler, server = relay
    with client_socket(server.port) as sock:
        sock.sendall(b"POST /relay HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        received = bytearray()
        read_all(sock, received)
    ((status, _, echoed),) = split_responses(bytes(received))
    assert (status[:12], echoed) == (b"HTTP/1.1 200", b"hello world")
    assert handler.outcomes == ["done"]


def test_a_connect_becomes_a_tunnel_that_carries_bytes_both_ways():
    handler = TunnelEchoHandler()

    servers = StartedServers(ServerThread, handlers=(handler,))
    try:
        server = servers(hello)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            # bytes right behind the bodiless CONNECT belong to the tunnel (a TLS ClientHello)
            sock.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nfirst")
            received = b""
            while not received.endswith(b"first"):
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            head, _, rest = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 Connection Established\r\n")
            assert b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower()
            assert rest == b"first"
            payload = os.urandom(1024 * 1024)
            echoed = bytearray()
            reader = threading.Thread(target=read_all, args=(sock, echoed))
            reader.start()
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            reader.join(30)
        assert not reader.is_alive()
        assert bytes(echoed) == payload
        assert handler.targets == ["example.com:443"]
        assert handler.lost.wait(10)
    finally:
        servers.stop()


def test_an_http_1_0_connect_becomes_a_tunnel_too():
    """Python's http.client (under requests and urllib3) tunnels with `CONNECT ... HTTP/1.0`."""
    handler = TunnelEchoHandler()
    servers = StartedServers(ServerThread, handlers=(handler,))
    try:
        server = servers(hello)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"CONNECT example.com:443 HTTP/1.0\r\n\r\n")
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            assert received.startswith(b"HTTP/1.1 200 Connection Established\r\n")
            sock.sendall(b"ping")
            sock.shutdown(socket.SHUT_WR)
            echoed = bytearray(received.partition(b"\r\n\r\n")[2])
            read_all(sock, echoed)
        assert bytes(echoed) == b"ping"
        assert handler.targets == ["example.com:443"]
    finally:
        servers.stop()


def test_a_connect_no_handler_takes_is_not_served_by_the_app_mounted_at_the_root(serve):
    server = serve(hello)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 404 ")


@pytest.mark.parametrize("target", [b"example.com", b"/path", b"http://example.com:443/", b"a@b:443"])
def test_a_connect_target_not_in_authority_form_is_refused(serve, target):
    server = serve(hello)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"CONNECT " + target + b" HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 400 ")


def test_a_chunked_upload_s_trailers_reach_the_relay_once_its_body_ended(relay):
    """`body.trailers` (the extension point a proxy passes trailers on with): the request's
    trailer section, complete once `read_async` returned b"" (here echoed as the response's)."""
    handler, server = relay
    with client_socket(server.port) as sock:
        sock.sendall(b"POST /relay HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nX-Checksum: abc \r\nServer-Timing: db;dur=5\r\n\r\n"
                     b"POST /relay HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"2\r\nhi\r\n0\r\n\r\n")
        received = bytearray()
        read_all(sock, received)
    assert handler.trailers == [[("x-checksum", "abc"), ("server-timing", "db;dur=5")], []]
    assert received.count(b"HTTP/1.1 200") == 2
    assert b"\r\n0\r\nx-checksum: abc\r\nserver-timing: db;dur=5\r\n\r\n" in received, bytes(received)
