"""WSGI (PEP 3333) behaviour over real sockets."""
import http.client
import io
import os
import socket
import threading
import time
import wsgiref.validate

import httpx
import pytest
from rawhttp import exchange, status_of


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


# apps for the validator: each exercises one response shape
def list_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"a", b"b"]


def generator_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"x" * 10
    yield b"y" * 10


def write_app(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    return [b"returned"]


def input_app(environ, start_response):
    stream = environ["wsgi.input"]
    first = stream.readline()
    rest = b"".join(stream.readlines())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [first, b"|", rest]


def file_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"from a file wrapper"), 4)


def empty_app(environ, start_response):
    start_response("204 No Content", [])
    return []


@pytest.mark.parametrize("app", [list_app, generator_app, write_app, input_app, file_app, empty_app])
@pytest.mark.parametrize("threads", [4, 0])
def test_wsgiref_validator_finds_nothing(serve, app, threads):
    errors = []

    def guarded(environ, start_response):
        try:
            return wsgiref.validate.validator(app)(environ, start_response)
        except AssertionError as error:
            errors.append(error)
            raise

    server = serve(guarded, threads=threads)
    with httpx.Client(timeout=5) as client:
        for method, kwargs in [("GET", {}), ("HEAD", {}), ("POST", {"content": b"line1\nline2\nline3"}),
                               ("PUT", {"content": iter([b"chunked\n", b"body"])}),
                               ("GET", {"params": {"q": "1 2"}, "headers": {"X-Many": "a"}})]:
            response = client.request(method, server.url("/v/path%20x"), **kwargs)
            assert response.status_code in (200, 204), response.text
    assert errors == []


def environ_recorder():
    """An app that keeps the environ of its last request in `seen`."""
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    return seen, app


def test_environ_follows_pep3333(serve):
    seen, app = environ_recorder()
    server = serve(("/mnt", app))
    request(server, "GET", "/mnt/a%2Fb/c?x=1&y=%20", headers={"X-Dup": "1", "Cookie": "a=1"})
    assert seen["SCRIPT_NAME"] == "/mnt" and seen["PATH_INFO"] == "/a/b/c"
    assert seen["QUERY_STRING"] == "x=1&y=%20"
    assert seen["REQUEST_URI"] == "/mnt/a%2Fb/c?x=1&y=%20"
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1" and seen["wsgi.url_scheme"] == "http"
    assert seen["SERVER_NAME"] == "127.0.0.1" and seen["SERVER_PORT"] == str(server.port)
    assert seen["REMOTE_ADDR"] == "127.0.0.1" and seen["HTTP_X_DUP"] == "1"
    assert seen["wsgi.multithread"] is True and seen["wsgi.version"] == (1, 0)


def test_a_request_without_host_names_the_listening_socket(serve):
    """SERVER_NAME and SERVER_PORT of an HTTP/1.0 request without Host come from the socket
    it arrived on (looked up only then, not on every connection)."""
    seen, app = environ_recorder()
    server = serve(app)
    assert status_of(exchange(server.port, b"GET / HTTP/1.0\r\n\r\n")) == 200
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", str(server.port))
    assert seen["REMOTE_ADDR"] == "127.0.0.1" and seen["REMOTE_PORT"].isdigit()
    assert "HTTP_HOST" not in seen


def test_headers_with_underscores_are_not_passed_to_apps(serve):
    seen, app = environ_recorder()
    server = serve(app)
    exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nConnection: close\r\n\r\n")
    assert "HTTP_X_FORWARDED_FOR" not in seen


def test_repeated_headers_are_joined(serve):
    seen, app = environ_recorder()
    server = serve(app)
    exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n"
                          b"Cookie: c=1\r\nCookie: d=2\r\nConnection: close\r\n\r\n")
    assert seen["HTTP_ACCEPT"] == "a, b"
    assert seen["HTTP_COOKIE"] == "c=1; d=2"


@pytest.mark.parametrize("threads", [4, 0])
def test_wsgi_input_read_variants(serve, threads):
    def app(environ, start_response):
        stream = environ["wsgi.input"]
        parts = [stream.read(3), stream.readline(), stream.readline(2), stream.read(), stream.read(5)]
        start_response("200 OK", [])
        return [repr(parts).encode()]

    server = serve(app, threads=threads)
    _, data = request(server, "POST", "/", body=b"abcdef\nghijkl\nmn")
    assert data == repr([b"abc", b"def\n", b"gh", b"ijkl\nmn", b""]).encode()


def test_wsgi_input_iteration_of_chunked_body(serve):
    def app(environ, start_response):
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [])
        return [str(len(lines)).encode(), b":", lines[-1]]

    server = serve(app)
    with httpx.Client(timeout=5) as client:
        response = client.post(server.url("/"), content=iter([b"l%d\n" % i for i in range(1000)]))
    assert response.text == "1000:l999\n"


def test_large_body_streams_without_being_held_in_memory(serve):
    """The app reads slowly: the server must stop reading from the socket (flow control), so the
    client cannot push the whole body while the app has consumed almost nothing."""
    release = threading.Event()
    consumed = []

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        consumed.append(len(stream.read(1024)))
        release.wait(10)
        total = consumed[0]
        while True:
            data = stream.read(1 << 20)
            if not data:
                break
            total += len(data)
        start_response("200 OK", [])
        return [str(total).encode()]

    server = serve(app, max_upload_size=1 << 30)
    size = 96 * 1024 * 1024
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    sock.settimeout(0.5)
    sent = 0
    block = b"z" * 65536
    try:
        while sent < size:
            sent += sock.send(block)
    except socket.timeout:
        pass
    assert sent < 48 * 1024 * 1024, "the server buffered far more than it handed to the app"
    release.set()
    sock.settimeout(10)
    while sent < size:
        sent += sock.send(block[: size - sent])
    response = b""
    while not response.endswith(str(size).encode()):
        chunk = sock.recv(65536)
        assert chunk
        response += chunk
    sock.close()
    assert response.startswith(b"HTTP/1.1 200 ")


def test_str_result_is_utf8(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return "héllo"

    response, data = request(serve(app), "GET", "/")
    assert data == "héllo".encode() and response.getheader("Content-Length") == "6"


def test_exc_info_replaces_headers_before_they_are_sent(serve):
    def app(environ, start_response):
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [("X-Second", "1")], sys.exc_info())
        return [b"replaced"]

    response, data = request(serve(app), "GET", "/")
    assert response.status == 500 and data == b"replaced"
    assert response.getheader("X-First") is None and response.getheader("X-Second") == "1"


def test_exc_info_after_headers_sent_reraises_and_aborts(serve):
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise ValueError("late")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"never"]

    server = serve(app)
    raw = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b"never" not in raw and not raw.endswith(b"0\r\n\r\n")  # no clean chunked end


def test_start_response_twice_without_exc_info_is_an_error(serve):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b""]

    response, _ = request(serve(app), "GET", "/")
    assert response.status == 500


@pytest.mark.parametrize("headers", [[("X-Bad", "a\r\nInjected: 1")], [("Bad Name:", "x")],
                                     [("Content-Length", "abc")]])
def test_invalid_response_headers_give_500(serve, headers):
    def app(environ, start_response):
        start_response("200 OK", headers)
        return [b""]

    response, data = request(serve(app), "GET", "/")
    assert response.status == 500 and response.getheader("Injected") is None


def test_app_exception_gives_500_and_traceback_only_in_devel_or_debug(serve):
    def app(environ, start_response):
        raise RuntimeError("secret detail")

    response, data = request(serve(app), "GET", "/")
    assert response.status == 500 and b"secret detail" not in data
    response, data = request(serve(app, devel=True), "GET", "/")
    assert response.status == 500 and b"secret detail" in data
    app.debug = True  # what pref.debug sets
    response, data = request(serve(app), "GET", "/")
    assert response.status == 500 and b"secret detail" in data


def test_close_is_called_after_normal_response(serve):
    closed = threading.Event()

    class Body:
        def __iter__(self):
            yield b"body"

        def close(self):
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    _, data = request(serve(app), "GET", "/")
    assert data == b"body" and closed.wait(5)


def test_close_is_called_when_client_goes_away(serve):
    closed = threading.Event()
    stopped_early = []

    class Endless:
        def __init__(self):
            self.count = 0

        def __iter__(self):
            while self.count < 100000:
                self.count += 1
                yield b"x" * 65536

        def close(self):
            stopped_early.append(self.count < 100000)
            closed.set()

    def app(environ, start_response):
        start_response("200 OK", [])
        return Endless()

    server = serve(app)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.recv(1000)
    sock.close()
    assert closed.wait(10)
    assert stopped_early == [True]


def test_file_wrapper_uses_sendfile_path_and_honours_range(serve, tmp_path):
    payload = os.urandom(300000)
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)

    def app(environ, start_response):
        handle = open(path, "rb")
        handle.seek(1000)
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("ETag", '"v1"')])
        return environ["wsgi.file_wrapper"](handle)

    server = serve(app)
    response, data = request(server, "GET", "/")
    assert data == payload[1000:] and response.getheader("Content-Length") == str(len(payload) - 1000)
    response, data = request(server, "GET", "/", headers={"Range": "bytes=10-19"})
    assert response.status == 206 and data == payload[1010:1020]
    assert response.getheader("Content-Range") == f"bytes 10-19/{len(payload) - 1000}"
    response, data = request(server, "GET", "/", headers={"Range": "bytes=10-19", "If-Range": '"v2"'})
    assert response.status == 200 and len(data) == len(payload) - 1000
    response, _ = request(server, "GET", "/", headers={"Range": "bytes=999999-"})
    assert response.status == 416


def test_content_length_from_app_is_kept_and_generator_is_chunked(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "6")])
        yield b"abc"
        yield b"def"

    server = serve(app)
    response, data = request(server, "GET", "/")
    assert data == b"abcdef" and response.getheader("Transfer-Encoding") is None
    _, data = request(serve(generator_app), "GET", "/")
    assert data == b"x" * 10 + b"y" * 10


def test_short_body_against_content_length_closes_connection(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "100")])
        return iter([b"short"])

    server = serve(app)
    raw = exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert raw.endswith(b"short")  # and the server closed: exchange() returned before timeout


def test_threads_run_apps_concurrently(serve):
    barrier = threading.Barrier(4, timeout=5)

    def app(environ, start_response):
        barrier.wait()
        start_response("200 OK", [])
        return [b"ok"]

    server = serve(app, threads=4)
    results = []
    workers = [threading.Thread(target=lambda: results.append(request(server, "GET", "/")[1]))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert results == [b"ok"] * 4


def test_body_timeout_while_app_reads_gives_408(serve):
    def app(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"never"]

    server = serve(app, request_timeout=1)
    started = time.monotonic()
    raw = exchange(server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", timeout=10)
    assert status_of(raw) == 408
    assert time.monotonic() - started < 8


def test_list_body_shorter_than_declared_length_closes_connection(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "50")])
        return [b"only this"]

    raw = exchange(serve(app).port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert raw.endswith(b"only this")  # returned before the timeout: the server closed
