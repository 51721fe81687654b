"""`skitai.streamexchange.StreamExchange`, the base of the HTTP/2 and HTTP/3 plugins' exchanges,
through a small protocol of the test's own that records what reaches its wire: the head's
fields and end, the body cut to its Content-Length, back-pressure over the high-water mark, and
the checks before a push. (The plugins' suites test the same over real connections.)"""
import asyncio

import pytest
from h1util import settle

from skitai.streamexchange import ALWAYS_WRITABLE, StreamExchange, block_stream


class Wire:
    """The connection side a StreamExchange talks to, recording every call."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.client = ("127.0.0.1", 50000)
        self.sockname = ("127.0.0.1", 8080)
        self.environ_bases = {}
        self.extra_fields = [(b"x-plugin", b"1")]
        self.heads: list[tuple[int, list, bool]] = []
        self.pieces: list[bytes] = []
        self.calls: list[str] = []
        self.pushed: list[str] = []
        self.push_ok = True

    def stream_done(self, exchange) -> None:
        self.calls.append("done")

    def abort_stream(self, exchange, cancelled=False) -> None:
        self.calls.append("cancel" if cancelled else "abort")
        exchange.aborted = True

    def block(self, exchange) -> None:
        self.calls.append("block")
        block_stream(exchange)

    def push(self, parent, block, target, fields) -> None:
        self.pushed.append(target)


class ListStream(StreamExchange):
    protocol_name = "TEST/1"
    high_water = 10

    def _write_head(self, code, fields, end) -> bool:
        self.conn.heads.append((code, fields, end))
        return True

    def _head_ended(self) -> None:
        self.conn.stream_done(self)

    def _enqueue(self, piece) -> int:
        self.conn.pieces.append(bytes(piece))
        return sum(len(piece) for piece in self.conn.pieces)

    def _kick(self) -> None:
        self.conn.calls.append("kick")

    def _may_push(self) -> bool:
        return self.conn.push_ok

    def finish(self) -> None:
        self.conn.calls.append("finish")


@pytest.fixture
def wire():
    loop = asyncio.new_event_loop()
    yield Wire(loop)
    loop.close()


def stream(wire, method="GET", headers=(("host", "example.com"),)):
    return ListStream(wire, 1, method, "/a?b=1", list(headers), "9", "https")


def test_the_request_attributes_come_from_the_target_and_the_connection(wire):
    exchange = stream(wire)
    assert (exchange.path, exchange.query, exchange.version, exchange.scheme) == ("/a", "b=1", "9", "https")
    assert exchange.client == wire.client and exchange.writable is ALWAYS_WRITABLE


def test_a_response_declares_its_length_and_plugin_fields_and_queues_its_body(wire):
    exchange = stream(wire)
    exchange.send_response("200 OK", [("Content-Type", "text/plain")], b"hello")
    (code, fields, end), = wire.heads
    assert code == 200 and not end
    assert (b"content-length", b"5") in fields and (b"x-plugin", b"1") in fields
    assert wire.pieces == [b"hello"] and wire.calls == ["finish"] and exchange.bytes_sent == 5


@pytest.mark.parametrize("method, status", [("HEAD", "200 OK"), ("GET", "204 No Content"), ("GET", "200 OK")])
def test_a_response_without_body_ends_the_stream_with_its_head(wire, method, status):
    exchange = stream(wire, method)
    exchange.send_response(status, [], b"" if method == "GET" else b"ignored")
    assert [end for _, _, end in wire.heads] == [True]
    assert wire.pieces == [] and wire.calls == ["done"]


def test_trailers_keep_an_empty_response_open_for_them(wire):
    exchange = stream(wire)
    exchange.trailers = [("x-sum", "1")]
    exchange.send_response("200 OK", [], b"")
    assert [end for _, _, end in wire.heads] == [False] and wire.calls == ["finish"]


class WholeStream(ListStream):
    """A protocol that sends a one-piece body with its head when `wire.whole` says it can."""

    def _write_whole(self, code, fields, body):
        outcome = self.conn.whole
        if outcome:
            self.conn.heads.append((code, fields, "whole"))
            self.conn.pieces.append(body)
        return outcome


@pytest.mark.parametrize("outcome", [True, False, None])
def test_a_one_piece_body_goes_with_its_head_where_the_protocol_can(wire, outcome):
    wire.whole = outcome
    exchange = WholeStream(wire, 1, "GET", "/", [], "9", "https")
    exchange.send_response("200 OK", [("Content-Type", "text/plain")], [b"hello"])
    if outcome is None:  # the usual way
        assert [end for _, _, end in wire.heads] == [False] and wire.calls == ["finish"]
        assert wire.pieces == [b"hello"] and exchange.bytes_sent == 5
    elif outcome:
        (code, fields, how), = wire.heads
        assert (code, how) == (200, "whole") and (b"content-length", b"5") in fields
        assert wire.pieces == [b"hello"] and wire.calls == ["done"] and exchange.bytes_sent == 5
    else:  # the stream is gone: nothing more is tried
        assert wire.heads == [] and wire.pieces == [] and wire.calls == []


@pytest.mark.parametrize("method, status, headers, body", [
    ("GET", "200 OK", [("Content-Length", "3")], b"hello"),    # cut to its Content-Length
    ("GET", "200 OK", [("Content-Length", "9")], b"hello"),    # shorter than declared
    ("HEAD", "200 OK", [], b"hello"),
    ("GET", "200 OK", [], [b"he", b"llo"]),                    # more than one piece
    ("GET", "200 OK", [], bytearray(b"hello")),
])
def test_a_body_the_head_does_not_describe_exactly_takes_the_usual_way(wire, method, status, headers, body):
    wire.whole = True
    exchange = WholeStream(wire, 1, method, "/", [], "9", "https")
    exchange.send_response(status, headers, body)
    assert all(how != "whole" for _, _, how in wire.heads)


def test_trailers_take_the_usual_way(wire):
    wire.whole = True
    exchange = WholeStream(wire, 1, "GET", "/", [], "9", "https")
    exchange.trailers = [("x-sum", "1")]
    exchange.send_response("200 OK", [], b"hello")
    assert [end for _, _, end in wire.heads] == [False] and wire.pieces == [b"hello"]


def test_data_past_the_declared_length_is_dropped(wire):
    exchange = stream(wire)
    exchange.send_head("200 OK", [("Content-Length", "4")])
    exchange.send_data(b"abc")
    exchange.send_data(b"defg")
    exchange.send_data(b"h")
    assert b"".join(wire.pieces) == b"abcd" and exchange.bytes_sent == 4


def test_a_stream_over_its_high_water_mark_blocks_its_producer_alone(wire):
    exchange = stream(wire)
    exchange.send_head("200 OK", [])
    exchange.send_data(b"x" * 8)
    assert "block" not in wire.calls
    exchange.send_data(b"x" * 8)
    assert wire.calls.count("block") == 1
    assert exchange.writable is not ALWAYS_WRITABLE and not exchange.writable.is_set()
    assert ALWAYS_WRITABLE.is_set()


def test_abort_reaches_the_connection_once(wire):
    exchange = stream(wire)
    exchange.abort()
    exchange.abort()
    assert wire.calls == ["abort"]


def test_a_wsgi_app_whose_client_went_away_cancels_its_stream(wire):
    """The client, not the app, ended the response (here its upload broke off mid-read; the
    same path serves a client that stopped reading): the stream is reset as cancelled (HTTP/2
    CANCEL), not as the server's internal error. A failing app still aborts as an error."""
    from skitai.body import StreamedBody
    from skitai.exchange import ClientDisconnected
    from skitai.wsgi.handler import WSGIApp

    def reader(environ, start_response):
        start_response("200 OK", [])
        yield b"first"
        environ["wsgi.input"].read()
        yield b"never"

    def failing(environ, start_response):
        start_response("200 OK", [])
        yield b"first"
        raise RuntimeError("the app's own failure")

    exchange = stream(wire, "POST")
    exchange.body = StreamedBody(lambda: None, lambda: None, timeout=5)
    exchange.body.fail(ClientDisconnected("the stream was reset"))
    WSGIApp("/", reader).handle(exchange)
    settle(wire.loop)  # threads=0: the app runs as the loop's next callback
    assert wire.calls[-1] == "cancel"
    WSGIApp("/", failing).handle(stream(wire))
    settle(wire.loop)
    assert wire.calls[-1] == "abort"


def test_a_push_is_promised_only_where_the_checks_allow_it(wire):
    async def pushes():
        allowed = stream(wire).push("/style.css")
        without_host = stream(wire, headers=()).push("/style.css")
        other_origin = stream(wire).push("https://elsewhere.example/x")
        wire.push_ok = False
        over_limits = stream(wire).push("/style.css")
        return allowed, without_host, other_origin, over_limits

    assert wire.loop.run_until_complete(pushes()) == (True, False, False, False)
    assert wire.pushed == ["/style.css"]
