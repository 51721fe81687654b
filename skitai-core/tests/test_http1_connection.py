"""HTTP/1.1 connection behaviour with bytes in and bytes out, no sockets."""
import time

import pytest
from h1util import Harness, RecordingTransport, split_responses

from skitai.exchange import RequestHandler
from skitai.http1.connection import H1Connection, H1Exchange
from skitai.http1.parser import RequestParser


def echo_app(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["REQUEST_METHOD"].encode(), b" ", environ["PATH_INFO"].encode(), b" ", body]


def streaming_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"one,"
    yield b""
    yield b"two"


def environ_recorder(seen: dict):
    """An app that answers 200 with an empty body and copies each request's environ into `seen`."""
    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]
    return app


@pytest.fixture
def h1():
    harnesses = []

    def make(app=echo_app, **settings):
        harness = Harness(("/", app), **settings)
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        harness.close()


def test_simple_get_has_length_date_and_server(h1):
    out = h1().feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    [(status, headers, body)] = split_responses(out)
    assert status == b"HTTP/1.1 200 OK"
    assert body == b"GET /a "
    assert headers["content-length"] == "7"
    assert headers["server"].startswith("skitai/")
    assert headers["date"].endswith("GMT")


def test_pipelined_requests_answered_in_order(h1):
    harness = h1()
    out = harness.feed(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                       b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
    bodies = [body for _, _, body in split_responses(out)]
    assert bodies == [b"GET /1 ", b"POST /2 abc", b"GET /3 "]
    assert not harness.transport.closed


def test_a_connections_later_pipelines_are_answered_in_order_too(h1):
    """The queue of pipelined requests is made for a connection's first pipeline (a connection
    that never pipelines has none); once emptied, it serves the next pipelines the same way."""
    harness = h1()
    for batch in (b"a", b"b", b"c"):
        out = harness.feed(b"".join(b"GET /%s%d HTTP/1.1\r\nHost: x\r\n\r\n" % (batch, n) for n in range(3)))
        assert [body for _, _, body in split_responses(out)] == [b"GET /%s%d " % (batch, n) for n in range(3)]
    assert not harness.transport.closed


def test_request_split_across_many_packets(h1):
    harness = h1()
    raw = b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    out = b"".join(harness.feed(raw[i:i + 1]) for i in range(len(raw)))
    assert split_responses(out)[0][2] == b"POST /s hello"


def test_chunked_request_body_is_dechunked(h1):
    out = h1().feed(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert split_responses(out)[0][2] == b"POST /c abc0123456789"


def test_generator_response_is_chunked_and_empty_chunks_skipped(h1):
    out = h1(streaming_app).feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"Transfer-Encoding: chunked\r\n" in out
    assert out.endswith(b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n")


def test_generator_response_on_http10_is_close_delimited(h1):
    harness = h1(streaming_app)
    out = harness.feed(b"GET / HTTP/1.0\r\n\r\n")
    assert b"Transfer-Encoding" not in out and b"Connection: close\r\n" in out
    assert out.endswith(b"\r\n\r\none,two")
    assert harness.transport.closed


def test_http10_without_keep_alive_closes(h1):
    harness = h1()
    out = harness.feed(b"GET / HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200 OK\r\n") and b"Connection: close\r\n" in out
    assert harness.transport.closed


def test_http10_with_keep_alive_stays_open(h1):
    harness = h1()
    out = harness.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"Connection: keep-alive\r\n" in out
    assert not harness.transport.closed
    assert harness.feed(b"GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").endswith(b"GET /again ")


def test_connection_close_is_honoured(h1):
    harness = h1()
    out = harness.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Connection: close\r\n" in out
    assert harness.transport.closed


def test_head_has_length_but_no_body(h1):
    out = h1().feed(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"Content-Length: 8\r\n" in head  # length of the GET body "HEAD /h "
    assert body == b""


def test_expect_continue_gets_interim_response_before_final(h1):
    harness = h1()
    out = harness.feed(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert out == b"HTTP/1.1 100 Continue\r\n\r\n"
    out = harness.feed(b"data")
    assert split_responses(out)[0][2] == b"POST /e data"


def test_absolute_form_target_routes_by_path_and_sets_host(h1):
    seen = {}
    app = environ_recorder(seen)

    h1(app).feed(b"GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n")
    assert seen["PATH_INFO"] == "/p/q" and seen["QUERY_STRING"] == "x=1"
    assert seen["HTTP_HOST"] == "example.com:8080"
    assert seen["SERVER_NAME"] == "example.com" and seen["SERVER_PORT"] == "8080"


def test_the_local_address_is_looked_up_only_for_a_request_without_host(h1):
    """Accepting a connection does not ask the transport for its local address: a request
    with Host never needs it; one without Host gets it as SERVER_NAME and SERVER_PORT."""
    seen = {}
    app = environ_recorder(seen)

    harness = h1(app)
    asked = []
    lookup = harness.transport.get_extra_info
    harness.transport.get_extra_info = lambda name, default=None: asked.append(name) or lookup(name, default)
    harness.feed(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert seen["SERVER_NAME"] == "example.com" and "sockname" not in asked
    harness.feed(b"GET / HTTP/1.0\r\n\r\n")
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", "8080")
    assert asked.count("sockname") == 1
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("127.0.0.1", "40000")


@pytest.mark.parametrize("certfile, scheme", [(None, "http"), ("cert.pem", "http"), ("cert.pem", "https")])
def test_the_transport_is_asked_for_tls_only_when_a_certificate_is_configured(h1, certfile, scheme):
    """Without `skitai.enable_ssl` no listener speaks TLS: the scheme is http without asking
    the transport; with it, the transport's TLS context decides."""
    seen = {}
    app = environ_recorder(seen)

    harness = h1(app)
    harness.server.config.ssl_certfile = certfile
    asked = []
    transport = RecordingTransport(harness.connection)
    context = object() if scheme == "https" else None
    transport.get_extra_info = lambda name, default=None: asked.append(name) or (
        context if name == "sslcontext" else harness.transport.get_extra_info(name, default))
    harness.connection.connection_made(transport)
    harness.transport = transport
    harness.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert seen["wsgi.url_scheme"] == scheme
    assert ("sslcontext" in asked) == (certfile is not None)


def test_a_connections_last_request_keeps_no_environ_for_a_next_one(h1):
    """Under `Connection: close` (or HTTP/1.0) no request follows: the environ is made
    without a per-connection dict to share, and is still complete."""
    seen = {}
    app = environ_recorder(seen)

    harness = h1(app)
    harness.feed(b"GET /a HTTP/1.1\r\nHost: example.com:81\r\n\r\n")
    assert len(harness.connection.environ_bases) == 1  # kept for the next request
    harness.connection.environ_bases.clear()
    harness.feed(b"GET /b HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n")
    assert harness.transport.closed and not harness.connection.environ_bases
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"], seen["PATH_INFO"]) == ("example.org", "80", "/b")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"], seen["wsgi.url_scheme"]) == ("127.0.0.1", "40000", "http")


@pytest.mark.parametrize("app, raw", [
    (echo_app, b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"),
    (echo_app, b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    (echo_app, b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\ndata"),
    (echo_app, b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n0\r\n\r\n"),
    (streaming_app, b"GET /s HTTP/1.1\r\nHost: x\r\n\r\n"),
])
def test_the_usual_paths_set_no_attribute_the_exchanges_init_did_not(h1, monkeypatch, app, raw):
    """CPython shares one compact attribute layout among a class's instances only for the
    names its first instances set: a name first set late (by a response going out while other
    requests are open) gives every exchange that sets it a dict of its own, at some thousands
    of instructions a request. So the usual paths set no name `__init__` did not."""
    made = []
    init = H1Exchange.__init__

    def recording_init(self, *args):
        init(self, *args)
        made.append((self, set(vars(self))))

    monkeypatch.setattr(H1Exchange, "__init__", recording_init)
    out = h1(app).feed(raw)
    assert out.startswith(b"HTTP/1.1 200 OK") and len(made) == 1
    exchange, at_init = made[0]
    assert exchange.finished and set(vars(exchange)) == at_init


def test_a_lost_connection_leaves_the_server_with_nothing_in_flight_or_with_its_exchange_aborted(h1):
    """`connection_lost` after the last response (the usual end) and in the middle of a
    request both take the connection out of the server's set and drop the parser."""
    done = h1()
    done.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert done.connection in done.server.connections
    done.connection.connection_lost(None)
    assert done.connection not in done.server.connections and done.connection.parser._parser is None
    midway = h1()
    midway.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc")
    exchange = midway.connection.receiving
    midway.connection.connection_lost(None)
    assert midway.connection not in midway.server.connections and midway.connection.parser._parser is None
    assert exchange.aborted and midway.connection.receiving is None


@pytest.mark.parametrize("raw, status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 413),
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n", 400),
])
def test_limits_and_malformed_requests_get_status_and_close(h1, raw, status):
    harness = h1(max_upload_size=1000)
    out = harness.feed(raw)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:80]
    assert b"Connection: close\r\n" in out
    assert harness.transport.closed


def test_chunked_body_over_limit_gets_413_while_streaming(h1):
    harness = h1(max_upload_size=1000)
    out = harness.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert out == b""
    out = harness.feed(b"400\r\n" + b"a" * 1024 + b"\r\n")
    assert out.startswith(b"HTTP/1.1 413 ")
    assert harness.transport.closed


def test_error_after_pipelined_request_answers_the_good_one_first(h1):
    harness = h1()
    out = harness.feed(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/9.9\r\n\r\n")
    responses = split_responses(out)
    assert responses[0][2] == b"GET /ok "
    assert responses[1][0].startswith(b"HTTP/1.1 400") or responses[1][0].startswith(b"HTTP/1.1 505")
    assert harness.transport.closed


def test_malformed_body_of_a_request_waiting_behind_another_is_answered_in_its_turn(h1):
    """threads=0 answers in the loop's next callback, so the whole pipeline is parsed first: the
    third request's body breaks off (a bad chunk size) while the first two wait for their
    answers. It gets its 400 after theirs and the connection closes (found by the fuzz test:
    the connection used to wait forever for a body end that could not come)."""
    harness = h1()
    out = harness.feed(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    responses = split_responses(out)
    assert [body for _, _, body in responses[:2]] == [b"GET /1 ", b"GET /2 "]
    assert responses[2][0].startswith(b"HTTP/1.1 400")
    assert harness.transport.closed


def test_a_servers_connections_share_settings_gathered_once_per_server(h1):
    """The per-server values a connection reads (timeouts, limits, response fields, upgrades,
    prefaces) are gathered for the server's first connection, not for every one; another
    server, with other settings, has its own."""
    harness = h1(request_timeout=5, keep_alive=2, max_header_count=3)
    settings = harness.connection.settings
    assert H1Connection(harness.server).settings is settings
    assert (settings.request_timeout, settings.keep_alive_timeout, settings.max_header_count) == (5, 2, 3)
    other = h1(request_timeout=7)
    assert other.connection.settings is not settings and other.connection.settings.request_timeout == 7
    out = harness.feed(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431 ")  # the limit reaches the parser


def test_incomplete_request_times_out_with_408(h1):
    harness = h1(request_timeout=5)
    harness.feed(b"GET / HTTP/1.1\r\nHo")
    harness.connection.check_timeout(time.monotonic() + 4)
    assert not harness.transport.closed
    harness.connection.check_timeout(time.monotonic() + 6)
    assert harness.transport.data.startswith(b"HTTP/1.1 408 ")
    assert harness.transport.closed


def test_idle_keep_alive_closes_silently(h1):
    harness = h1(keep_alive=2, request_timeout=30)
    harness.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sent = len(harness.transport.data)
    harness.connection.check_timeout(time.monotonic() + 3)
    assert harness.transport.closed
    assert len(harness.transport.data) == sent


def test_body_that_stops_arriving_times_out_with_408(h1):
    harness = h1(request_timeout=5)
    harness.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    harness.connection.check_timeout(time.monotonic() + 6)
    assert harness.transport.data.startswith(b"HTTP/1.1 408 ")
    assert harness.transport.closed


def test_expect_continue_with_too_large_body_gets_413_without_interim_response(h1):
    harness = h1(max_upload_size=100)
    out = harness.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in out
    assert harness.transport.closed


class AnswersWithoutReading(RequestHandler):
    """Responds at once, leaving the request body unread (as a static file handler does)."""

    def handle(self, exchange):
        exchange.send_response("200 OK", [], b"ignored")


def test_unread_small_body_is_drained_and_connection_kept():
    harness = Harness(handlers=[AnswersWithoutReading()])
    try:
        out = harness.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        assert out.endswith(b"ignored") and not harness.transport.closed
        out = harness.feed(b"56789GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.endswith(b"ignored") and out.count(b"HTTP/1.1 200") == 1
        assert not harness.transport.closed
    finally:
        harness.close()


def test_unread_large_body_closes_instead_of_draining():
    harness = Harness(handlers=[AnswersWithoutReading()])
    try:
        out = harness.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n01234")
        assert b"Connection: close" in out and harness.transport.closed
    finally:
        harness.close()


def test_any_failure_inside_a_parser_callback_is_a_400_and_a_close(h1, monkeypatch, caplog):
    """Not only the parser's own refusals: a defect in a callback (here one planted in
    on_header) must not escape to the transport ("Fatal error on transport", no answer)."""
    def broken(self, name, value):
        raise KeyError("planted defect")

    monkeypatch.setattr(RequestParser, "on_header", broken)  # before the parser binds its callbacks
    harness = h1()
    out = harness.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close\r\n" in out
    assert harness.transport.closed
    assert [record.exc_info[0] for record in caplog.records if record.exc_info] == [KeyError]
