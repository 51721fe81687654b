"""HTTP/1.1 over real sockets with real clients (curl, http.client, httpx, raw sockets)."""
import http.client
import socket
import subprocess
import threading
import time

import httpx
import pytest
from h1util import split_responses
from rawhttp import exchange, status_of

from skitai.exchange import RequestHandler
from skitai.testing import ServerThread, StartedServers, requires_commands


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["REQUEST_METHOD"].encode(), b":", body]


def streamer(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    for index in range(5):
        yield b"part%d;" % index


curl = requires_commands("curl", install="apt-get install curl")


def run_curl(*args):
    return subprocess.run(["curl", "-s", "-S", "--max-time", "10", *args], capture_output=True,
                          timeout=30, check=True)


def test_keep_alive_and_pipelining_on_one_socket(serve):
    server = serve(echo)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" * 3 +
                     b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
        data = b""
        while data.count(b"HTTP/1.1 200 OK") < 4 or not data.endswith(b"POST:ok"):
            data += sock.recv(65536)
    assert data.count(b"GET:") == 3 and data.index(b"GET:") < data.index(b"POST:ok")


@curl
def test_curl_chunked_upload_with_expect_continue(serve, tmp_path):
    server = serve(echo)
    payload = tmp_path / "upload.bin"
    payload.write_bytes(b"u" * 2_000_000)
    result = run_curl("-H", "Transfer-Encoding: chunked", "-H", "Expect: 100-continue",
                      "--data-binary", f"@{payload}", "-w", "%{http_code}", server.url("/"))
    assert result.stdout == b"POST:" + b"u" * 2_000_000 + b"200"


@curl
def test_curl_http10_and_head_and_streamed_response(serve):
    server = serve(streamer)
    assert run_curl("--http1.0", server.url("/")).stdout == b"part0;part1;part2;part3;part4;"
    head = run_curl("-I", server.url("/")).stdout
    assert head.startswith(b"HTTP/1.1 200 OK") and b"part" not in head
    assert b"Transfer-Encoding: chunked" in run_curl("-i", server.url("/")).stdout


def test_connection_close_closes(serve):
    server = serve(echo)
    raw = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK") and b"Connection: close\r\n" in raw


def test_httpx_many_requests_reuse_one_connection(serve):
    server = serve(echo)
    with httpx.Client(timeout=5) as client:
        for index in range(50):
            assert client.post(server.url("/"), content=b"%d" % index).text == "POST:%d" % index


@pytest.mark.parametrize("raw, status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 300000, 431),  # never-ending header
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n" + b"a" * 100000, 413),
    (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    (b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad{Name: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),  # a TLS hello on the plain port
])
def test_malformed_and_oversized_requests_over_sockets(serve, raw, status):
    server = serve(echo, max_upload_size=1_000_000)
    response = exchange(server.port, raw)
    assert status_of(response) == status
    assert b"Connection: close\r\n" in response


def test_chunked_upload_over_limit_is_refused_while_streaming(serve):
    server = serve(echo, max_upload_size=100_000)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(10):
            sock.sendall(b"4000\r\n" + b"c" * 0x4000 + b"\r\n")
        response = sock.recv(65536)
    assert status_of(response) == 413


def test_silent_client_gets_408(serve):
    server = serve(echo, request_timeout=1)
    started = time.monotonic()
    response = exchange(server.port, b"GET / HTTP/1.1\r\nHost:", timeout=10)
    assert status_of(response) == 408 and 0.9 < time.monotonic() - started < 5


def test_a_client_that_connects_and_sends_nothing_still_meets_the_request_timeout(serve):
    """The listener defers accept until a client's first bytes (see skitai.listeners): a client
    that sends none is held by the kernel for one to three seconds, then handed over, and the
    request timeout runs from there."""
    server = serve(echo, request_timeout=1)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert status_of(response) == 408 and 0.9 < time.monotonic() - started < 10


def test_idle_keep_alive_connection_is_closed_without_a_response(serve):
    server = serve(echo, keep_alive=1)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/")
    conn.getresponse().read()
    started = time.monotonic()
    assert conn.sock.recv(100) == b""
    assert 0.9 < time.monotonic() - started < 5


def test_a_client_that_closes_its_side_is_taken_as_gone(serve):
    """A FIN cannot be told from a half-close: as uvicorn, Go and nginx do, the server takes the
    client as gone and closes at once instead of holding the connection for unread answers."""
    release = threading.Event()

    def held(environ, start_response):
        release.wait(10)
        return echo(environ, start_response)

    server = serve(held)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(65536) == b""  # closed while the app still holds the request
    finally:
        release.set()


@curl
def test_upgrade_request_with_a_body_is_served_as_http11(serve):
    """curl --http2 on http:// asks for h2c with `Upgrade` on a POST; with no upgrade handler
    the request and its body are served as HTTP/1.1."""
    server = serve(echo)
    result = run_curl("--http2", "-d", "abc=1", server.url("/"), server.url("/"))
    assert result.stdout == b"POST:abc=1POST:abc=1"


@pytest.mark.parametrize("framing, body", [
    (b"Content-Length: 5\r\n\r\n", b"hello"),
    (b"Transfer-Encoding: chunked\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
])
def test_ignored_upgrade_keeps_body_and_next_request_in_step(serve, framing, body):
    server = serve(echo)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + framing
        sock.sendall(head)
        time.sleep(0.05)  # the body arrives in a later packet than the head
        sock.sendall(body + b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2 and b"POST:hello" in data and data.endswith(b"GET:")


def host_and_agent(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    fields = (environ.get("HTTP_HOST"), environ.get("HTTP_USER_AGENT"), environ["SERVER_NAME"], environ["PATH_INFO"])
    return ["|".join(map(str, fields)).encode()]


@pytest.mark.parametrize("raw, answer", [
    # no header field at all: the parser used to raise IndexError and the connection died unanswered
    (b"GET http://example.com/x HTTP/1.0\r\n\r\n", b"example.com|None|example.com|/x"),
    # one field and no Host: the field used to be overwritten by the Host
    (b"GET http://example.com/x HTTP/1.0\r\nUser-Agent: probe\r\n\r\n", b"example.com|probe|example.com|/x"),
    (b"GET http://[::1]:8080/foo HTTP/1.1\r\nHost: localhost\r\nUser-Agent: probe\r\nConnection: close\r\n\r\n",
     b"[::1]:8080|probe|[::1]|/foo"),
])
def test_absolute_form_target_sets_the_host_and_keeps_other_fields(serve, raw, answer):
    server = serve(host_and_agent)
    response = exchange(server.port, raw)
    assert status_of(response) == 200 and response.endswith(b"\r\n\r\n" + answer), response


@pytest.mark.parametrize("head, trailer", [
    (b"", b"Host: evil.example\r\n"),
    (b"", b"Content-Type: text/html\r\n"),
    (b"", b"Authorization: Basic YTpi\r\n"),
    (b"Content-Type: text/plain\r\nContent-Type: text/html\r\n", b""),
])
def test_ambiguous_content_type_and_forbidden_trailers_get_400_and_a_close(serve, head, trailer):
    """A chunked request whose trailer section carries a field only the head may carry, or two
    Content-Type lines: 400 and a close, where the trailer used to be dropped silently and the
    duplicate passed on. The pipelined request behind is not served."""
    server = serve(echo)
    request = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + head + b"\r\n"
               b"5\r\nhello\r\n0\r\n" + trailer + b"\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    response = exchange(server.port, request)
    assert status_of(response) == 400 and b"Connection: close\r\n" in response
    assert response.count(b"HTTP/1.1 ") == 1, response


def test_allowed_trailer_fields_are_dropped_and_the_connection_goes_on(serve):
    server = serve(echo)
    request = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
               b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = exchange(server.port, request)
    assert response.count(b"HTTP/1.1 200 OK") == 2 and b"POST:hello" in response and response.endswith(b"GET:")


class FailingHandler(RequestHandler):
    """Raises in `handle()` for /fail-handle; lets every other request through."""

    def resolve(self, exchange):
        return self if exchange.path == "/fail-handle" else None

    def handle(self, exchange):
        raise RuntimeError("handler defect")


def test_a_handler_that_raises_in_handle_gets_500_and_the_connection_goes_on(caplog):
    def with_failing_handler():
        server = ServerThread()
        server.kernel.handlers.add(FailingHandler(), priority=100)
        return server

    servers = StartedServers(with_failing_handler)
    try:
        server = servers(echo)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /fail-handle HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    finally:
        servers.stop()
    responses = split_responses(data)
    assert [status for status, _, _ in responses] == [
        b"HTTP/1.1 200 OK", b"HTTP/1.1 500 Internal Server Error", b"HTTP/1.1 200 OK"]
    assert "connection" not in responses[1][1]
    failures = [record for record in caplog.records if "failed" in record.getMessage()]
    assert len(failures) == 1 and "FailingHandler" in failures[0].getMessage()
