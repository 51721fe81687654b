"""Handing a plain connection to another protocol: by its first bytes (a registered preface)
or by an HTTP/1.1 `Upgrade` a registered `ProtocolUpgrade` accepts. A toy protocol stands in
for HTTP/2 or WebSocket, so the core's mechanism is tested without any plugin."""
import asyncio
import socket

import httpx
import pytest

from skitai.plugin import ProtocolRegistry, ProtocolUpgrade
from skitai.testing import ServerThread, read_until_closed


class Shout(asyncio.Protocol):
    """Answers every byte it gets in upper case; `greeting` goes out first."""

    def __init__(self, server=None, greeting: bytes = b"") -> None:
        self.greeting = greeting

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.greeting:
            transport.write(self.greeting)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())


class ShoutUpgrade(ProtocolUpgrade):
    """Takes requests with `X-Ok`; greets with a 101 and what it read of the body."""

    def accepts(self, exchange) -> bool:
        return exchange.header("x-ok") is not None

    def take_over(self, server, exchange):
        body = exchange.body.read()
        return Shout(server, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\n\r\n"
                     + exchange.method.encode() + b" body=" + body + b"\n")


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"http/1.1 " + environ["wsgi.input"].read()]


@pytest.fixture
def server():
    thread = ServerThread()
    thread.mount("/", hello)
    thread.kernel.protocols.add("shout", Shout, preface=b"SHOUT!\r\n")
    thread.kernel.protocols.add("whisper", Shout, preface=b"WHISPER * TOY/1.0\r\n\r\n")
    thread.kernel.protocols.add_upgrade("Shout", ShoutUpgrade())
    with thread:
        yield thread


def talk(port: int, *pieces: bytes, expect: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        received = b""
        for piece in pieces:
            sock.sendall(piece)
        while expect not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_preface_starts_are_the_first_bytes_of_the_registered_prefaces():
    """A connection whose first byte is none of them is HTTP/1.1 without `match_preface`."""
    protocols = ProtocolRegistry()
    assert protocols.preface_starts == frozenset()
    protocols.add("shout", Shout, preface=b"SHOUT!\r\n")
    protocols.add("whisper", Shout, preface=b"WHISPER * TOY/1.0\r\n\r\n")
    protocols.add("plain", Shout)
    assert protocols.preface_starts == {ord("S"), ord("W")}


def test_preface_hands_the_connection_over(server):
    assert talk(server.port, b"SHOUT!\r\nhello", expect=b"HELLO") == b"SHOUT!\r\nHELLO"


def test_preface_split_across_reads(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"SHO")
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(100)  # undecided: nothing is answered yet
        sock.settimeout(5)
        sock.sendall(b"UT!\r\nabc")
        received = b""
        while b"ABC" not in received:
            received += sock.recv(100)
    assert received == b"SHOUT!\r\nABC"


def test_http11_still_served_when_a_preface_is_registered(server):
    response = httpx.post(server.url("/"), content=b"x", timeout=5)
    assert response.text == "http/1.1 x"
    # a method sharing the preface's first letter is HTTP/1.1 once it differs
    reply = talk(server.port, b"SHOW / HTTP/1.1\r\nHost: x\r\n\r\n", expect=b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 ")


@pytest.mark.parametrize("pieces", [
    (b"WHISPER / HTTP/1.1\r\nHost: x\r\n\r\n",),           # the preface's first word, then HTTP/1.1
    (b"WHISPER * TOY/1.0\r\nHost: x\r\n\r\n",),            # departs near the end
    (b"WHIS", b"PER * TOY/2.0\r\n\r\n"),                    # split across reads
])
def test_a_near_miss_of_a_preface_is_closed_without_an_answer(server, pieces):
    assert read_until_closed(server.port, *pieces) == b""


def test_a_request_that_only_shares_a_prefix_with_a_preface_is_http11(server):
    reply = talk(server.port, b"WHISPERS / HTTP/1.1\r\nHost: x\r\n\r\n", expect=b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 ")
    whole = talk(server.port, b"WHISPER * TOY/1.0\r\n\r\nhi", expect=b"HI")
    assert whole == b"WHISPER * TOY/1.0\r\n\r\nHI"


def test_upgrade_with_a_body_is_read_before_the_switch(server):
    request = (b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: other, shout\r\n"
               b"X-Ok: 1\r\nContent-Length: 3\r\n\r\nabc")
    reply = talk(server.port, request, expect=b"body=abc\n")
    assert reply.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert reply.endswith(b"POST body=abc\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while not received.endswith(b"body=abc\n"):
            received += sock.recv(100)
        sock.sendall(b"after")  # a client speaks the new protocol once it has the 101
        assert sock.recv(100) == b"AFTER"


def test_upgrade_after_pipelined_requests(server):
    plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: shout\r\nX-Ok: 1\r\n\r\n"
    reply = talk(server.port, plain + upgrade, expect=b"body=\n")
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert reply.endswith(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\n\r\nGET body=\n")


@pytest.mark.parametrize("headers", [
    b"Connection: Upgrade\r\nUpgrade: shout\r\n",              # the upgrade does not accept it
    b"Upgrade: shout\r\nX-Ok: 1\r\n",                          # Connection does not name Upgrade
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nX-Ok: 1\r\n",  # nobody registered it
])
def test_refused_upgrades_are_served_as_http11(server, headers):
    reply = talk(server.port, b"POST / HTTP/1.1\r\nHost: x\r\n" + headers + b"Content-Length: 2\r\n\r\nhi",
                 expect=b"http/1.1 hi")
    assert reply.startswith(b"HTTP/1.1 200 OK")


def test_registry_refuses_a_second_upgrade_of_the_same_token(server):
    with pytest.raises(ValueError):
        server.kernel.protocols.add_upgrade("SHOUT", ShoutUpgrade())
