"""An HTTP/1.1 connection's life: freed by reference counting once closed (not left to the
cyclic garbage collector, which under `Connection: close` ran every few hundred requests and
cost more than a request), and flow control through a shared, never-cleared `writable` Event
until the connection first has to wait."""
from __future__ import annotations

import asyncio
import gc
import socket
import threading
import weakref
from contextlib import contextmanager

import pytest
from h1util import Harness

from skitai.exchange import ALWAYS_WRITABLE, RequestHandler
from skitai.http1.connection import H1Connection
from skitai.http1.parser import RequestParser
from skitai.testing import ServerThread, TunnelEchoHandler

CLOSE_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]


@contextmanager
def cyclic_gc_off():
    """Only reference counting frees objects inside (what was garbage before is collected
    first, so it cannot be mistaken for what the test makes)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Holds(RequestHandler):
    """Keeps every request it is given unanswered, for tests that look at exchanges in flight."""

    def __init__(self) -> None:
        self.exchanges = []

    def handle(self, exchange) -> None:
        self.exchanges.append(exchange)


def served_and_lost(harness: Harness, request: bytes) -> dict:
    """Serve `request` on the harness's connection, lose the connection as a transport does
    (connection_lost, then the transport lets go of its protocol), drop the harness's
    references to it, and return weak references to what the connection was made of."""
    connection = harness.connection
    harness.feed(request)
    refs = {"connection": weakref.ref(connection), "parser": weakref.ref(connection.parser)}
    if connection.latest is not None:
        refs["exchange"] = weakref.ref(connection.latest)
    connection.connection_lost(None)
    harness.transport.protocol = None
    harness.connection = None
    return refs


def test_a_closed_connection_is_freed_without_the_cyclic_collector():
    harness = Harness(("/", hello))
    try:
        with cyclic_gc_off():
            refs = served_and_lost(harness, CLOSE_REQUEST)
            assert set(refs) == {"connection", "parser", "exchange"}
            alive = [name for name, ref in refs.items() if ref() is not None]
            assert alive == []
    finally:
        harness.close()


def test_a_connection_lost_with_requests_in_flight_is_freed_too():
    handler = Holds()
    harness = Harness(handlers=[handler])
    try:
        with cyclic_gc_off():
            refs = served_and_lost(harness, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                                            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\npart")
            assert len(handler.exchanges) == 1 and handler.exchanges[0].aborted
            handler.exchanges.clear()  # the app let go of its exchange
            alive = [name for name, ref in refs.items() if ref() is not None]
            assert alive == []
    finally:
        harness.close()


def test_a_closed_parser_lets_go_of_its_callbacks_and_takes_no_more_data():
    parser = RequestParser()
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    parser.close()
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []
    with cyclic_gc_off():
        ref = weakref.ref(parser)
        del parser
        assert ref() is None


def h1_objects_left_to_the_collector(exchange_bytes, times: int = 5) -> list[str]:
    """Run `exchange_bytes()` (one conversation on a connection of its own) `times` with the
    cyclic collector off, then the names of the HTTP/1.1 objects it finds unreachable."""
    with cyclic_gc_off():
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage
        try:
            for _ in range(times):
                exchange_bytes()
            gc.collect()
            return [type(obj).__name__ for obj in gc.garbage
                    if isinstance(obj, (H1Connection, RequestParser)) or type(obj).__name__ == "H1Exchange"]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()


def conversation(port: int, *messages: bytes) -> bytes:
    """Send each message on a new connection, read what comes back until a message's answer
    arrives, then close our side and read to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        received = b""
        for message in messages:
            sock.sendall(message)
            received += sock.recv(65536)
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("threads", [0, 2])
def test_a_served_server_leaves_no_connection_to_the_cyclic_collector(threads):
    """The same through a real socket and event loop, whose transport must let go too."""
    with ServerThread(threads=threads).mount("/", hello) as server:
        conversation(server.port, CLOSE_REQUEST)  # the server's first-request setup
        left = h1_objects_left_to_the_collector(
            lambda: conversation(server.port, CLOSE_REQUEST).endswith(b"hi") or pytest.fail("no answer"))
    assert left == []


def test_a_connection_handed_to_a_tunnel_is_freed():
    server = ServerThread()
    server.kernel.handlers.add(TunnelEchoHandler(), priority=1)
    with server:
        def tunnel() -> None:
            out = conversation(server.port, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                               b"ping")
            assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"ping")

        tunnel()
        left = h1_objects_left_to_the_collector(tunnel)
    assert left == []


# flow control
def test_connections_share_the_always_set_event_until_they_must_wait():
    first, second = Harness(handlers=[Holds()]), Harness(handlers=[Holds()])
    try:
        assert first.connection.writable is ALWAYS_WRITABLE
        assert second.connection.writable is ALWAYS_WRITABLE
        first.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert first.connection.current.writable is ALWAYS_WRITABLE

        first.connection.pause_writing()
        own = first.connection.writable
        assert own is not ALWAYS_WRITABLE and not own.is_set()
        assert first.connection.current.writable is own
        assert ALWAYS_WRITABLE.is_set() and second.connection.writable is ALWAYS_WRITABLE

        first.connection.resume_writing()
        assert own.is_set() and first.connection.writable is own
        first.connection.pause_writing()
        assert first.connection.writable is own and not own.is_set()  # made once
        first.connection.resume_writing()
    finally:
        first.close()
        second.close()


def test_pipelined_requests_wait_on_the_connections_own_event():
    handler = Holds()
    harness = Harness(handlers=[handler])
    try:
        connection = harness.connection
        harness.feed(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        [queued] = connection.pending
        connection.pause_writing()
        assert connection.current.writable is connection.writable is queued.writable
        assert not queued.writable.is_set() and ALWAYS_WRITABLE.is_set()
        connection.resume_writing()
        harness.feed(b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert connection.pending[-1].writable is connection.writable
    finally:
        harness.close()


def test_pause_and_resume_writing_hold_and_release_producers():
    handler = Holds()
    harness = Harness(handlers=[handler])
    try:
        connection = harness.connection
        harness.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        [exchange] = handler.exchanges
        connection.pause_writing()

        woken = threading.Event()
        producer = threading.Thread(target=lambda: exchange.writable.wait(30) and woken.set())
        producer.start()
        assert exchange.writable is not ALWAYS_WRITABLE and ALWAYS_WRITABLE.is_set()
        drain = harness.loop.create_task(exchange.drain())
        harness.loop.run_until_complete(asyncio.sleep(0.05))
        assert not drain.done() and not woken.is_set()

        connection.resume_writing()
        harness.loop.run_until_complete(asyncio.wait_for(drain, 5))
        producer.join(5)
        assert woken.is_set()
    finally:
        harness.close()


def test_a_lost_connection_wakes_producers_waiting_on_its_event():
    handler = Holds()
    harness = Harness(handlers=[handler])
    try:
        harness.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        [exchange] = handler.exchanges
        harness.connection.pause_writing()
        harness.connection.connection_lost(None)
        assert exchange.writable.is_set() and exchange.aborted
        assert ALWAYS_WRITABLE.is_set()
    finally:
        harness.close()
