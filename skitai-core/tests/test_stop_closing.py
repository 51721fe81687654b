"""A graceful stop waits for exchanges, not for sockets: a connection of any protocol that has
closed its side (`closed`) and written everything out does not hold the stop, whether its
closing lingers (`skitai.plugin.linger_then_close`) or, over TLS, waits for the close_notify of a
client that is not reading; one still serving does, up to the shutdown timeout.

The linger is made longer than the tests wait, and the shutdown timeout longer still, so a stop
held by an idle client would outlast the join: no timing is measured.
"""
import asyncio
import socket
import ssl

import pytest

import skitai.closing
from skitai.plugin import linger_then_close
from skitai.testing import ServerThread, make_certificates

PATIENT = 120.0  # the shutdown timeout and the linger: far longer than any join below
JOIN = 15.0


@pytest.fixture(autouse=True)
def long_linger(monkeypatch):
    monkeypatch.setattr(skitai.closing, "LINGER_SECONDS", PATIENT)


class Toy(asyncio.Protocol):
    """A protocol plugin's connection, reduced to the contract with the server: registered
    while open, `shutdown()` on a graceful stop (says BYE and closes when no exchange is active,
    after it otherwise), `closed` once its side is closed, `abort()`, `check_timeout(now)`.
    A line "BUSY" opens an exchange, "DONE" ends it."""

    def __init__(self, server):
        self.server = server
        self.closed = self.busy = self.shutting_down = False

    def connection_made(self, transport):
        self.transport = transport
        self.server.connection_opened(self)
        transport.write(b"HELLO\n")

    def data_received(self, data):
        if self.closed:
            return
        if b"BUSY" in data:
            self.busy = True
            self.transport.write(b"WORKING\n")
        if b"DONE" in data:
            self.busy = False
            if self.shutting_down:
                self.shutdown()

    def connection_lost(self, exc):
        self.closed = True
        self.server.connection_closed(self)

    def shutdown(self):
        self.shutting_down = True
        if not self.busy and not self.closed:
            self.transport.write(b"BYE\n")
            self.closed = True
            linger_then_close(self.transport, self.server.loop)

    def abort(self):
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def check_timeout(self, now):
        pass


@pytest.fixture
def toy_server():
    server = ServerThread(shutdown_timeout=PATIENT)
    server.kernel.protocols.add("toy", Toy, preface=b"TOY\n")
    with server:
        yield server


def toy_client(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(b"TOY\n")
    assert client.recv(100) == b"HELLO\n"
    return client


def read_to_end(client: socket.socket) -> bytes:
    data = b""
    while chunk := client.recv(100):
        data += chunk
    return data


def stop(server: ServerThread) -> bool:
    server.server.request_stop()
    server._thread.join(JOIN)
    return not server._thread.is_alive()


def test_a_plugin_connection_that_closed_its_side_does_not_hold_the_stop(toy_server):
    client = toy_client(toy_server.port)  # idle: neither reads nor closes until the stop is over
    try:
        assert stop(toy_server)
        assert read_to_end(client) == b"BYE\n"
    finally:
        client.close()


def test_a_plugin_connection_still_serving_holds_the_stop_until_its_exchange_ends(toy_server):
    busy, idle = toy_client(toy_server.port), toy_client(toy_server.port)
    try:
        busy.sendall(b"BUSY\n")
        assert busy.recv(100) == b"WORKING\n"
        toy_server.server.request_stop()
        assert idle.recv(100) == b"BYE\n"  # the idle one was told at once ...
        toy_server._thread.join(0.5)
        assert toy_server._thread.is_alive()  # ... the busy one holds the stop
        busy.sendall(b"DONE\n")
        toy_server._thread.join(JOIN)
        assert not toy_server._thread.is_alive()
        assert read_to_end(busy) == b"BYE\n"
    finally:
        busy.close()
        idle.close()


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def test_an_idle_tls_keep_alive_connection_does_not_hold_the_stop(tmp_path):
    """HTTP/1.1 closes an idle connection after its grace second; over TLS that close waits for
    the client's close_notify, which a pooled connection nobody reads never sends."""
    certs = make_certificates(str(tmp_path))
    server = ServerThread(shutdown_timeout=PATIENT, ssl_certfile=certs.cert, ssl_keyfile=certs.key)
    with server.mount("/", hello):
        context = ssl.create_default_context(cafile=certs.ca)
        client = context.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10),
                                     server_hostname="localhost")
        try:
            client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            response = b""
            while not response.endswith(b"hello"):
                response += client.recv(4096)
            assert response.startswith(b"HTTP/1.1 200 ")
            assert stop(server)
        finally:
            client.close()
