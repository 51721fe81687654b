"""Response trailers from WSGI apps (`environ["skitai.set_trailers"]`) over HTTP/1.1: the
trailer section of a chunked body when the client sent `TE: trailers`, dropped otherwise."""
import http.client
import io
import subprocess

import pytest
from rawhttp import exchange

from skitai.http1.framing import accepts_trailers, last_chunk
from skitai.testing import requires_commands

TRAILERS = [("X-Checksum", "abc123"), ("x-status", "0")]


def streamed(environ, start_response):
    """Trailers set after the last chunk, as a producer that computes them on the way does."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Trailer", "x-checksum, x-status")])
    yield b"part one\n"
    yield b"part two\n"
    environ["skitai.set_trailers"](TRAILERS)


def declared_list(environ, start_response):
    """A list body: declaring `Trailer` makes it chunked so the trailers can follow."""
    start_response("200 OK", [("Trailer", "x-checksum")])
    environ["skitai.set_trailers"](TRAILERS[:1])
    return [b"whole body"]


def undeclared_list(environ, start_response):
    """No `Trailer` header: the body keeps its Content-Length and HTTP/1.1 cannot carry trailers."""
    start_response("200 OK", [])
    environ["skitai.set_trailers"](TRAILERS[:1])
    return [b"whole body"]


def with_length(environ, start_response):
    start_response("200 OK", [("Trailer", "x-checksum"), ("Content-Length", "4")])
    environ["skitai.set_trailers"](TRAILERS[:1])
    return iter([b"body"])


def file_body(environ, start_response):
    start_response("200 OK", [("Trailer", "x-checksum")])
    environ["skitai.set_trailers"](TRAILERS[:1])
    return environ["wsgi.file_wrapper"](io.BytesIO(b"from a file"), 4)


def forbidden(environ, start_response):
    environ["skitai.set_trailers"]([("Content-Length", "5")])
    start_response("200 OK", [])
    return [b"never"]


ROUTES = {"/streamed": streamed, "/declared": declared_list, "/undeclared": undeclared_list,
          "/length": with_length, "/file": file_body, "/forbidden": forbidden}


def app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)


def get(port, path, te=True, method="GET"):
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if te:
        head += "TE: trailers\r\n"
    return exchange(port, (head + "\r\n").encode())


def test_trailers_after_a_streamed_body(serve):
    server = serve(app)
    response = get(server.port, "/streamed")
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Trailer: x-checksum, x-status" in head
    assert body == b"9\r\npart one\n\r\n9\r\npart two\n\r\n0\r\nx-checksum: abc123\r\nx-status: 0\r\n\r\n"


def test_trailers_dropped_without_te(serve):
    server = serve(app)
    response = get(server.port, "/streamed", te=False)
    assert response.endswith(b"9\r\npart two\n\r\n0\r\n\r\n") and b"abc123" not in response


def test_declared_trailers_make_a_list_body_chunked(serve):
    server = serve(app)
    response = get(server.port, "/declared")
    assert b"Content-Length" not in response
    assert response.endswith(b"a\r\nwhole body\r\n0\r\nx-checksum: abc123\r\n\r\n")


@pytest.mark.parametrize("path, body", [("/undeclared", b"whole body"), ("/length", b"body")])
def test_trailers_dropped_from_a_length_delimited_body(serve, path, body):
    server = serve(app)
    response = get(server.port, path)
    assert b"Content-Length: %d" % len(body) in response and response.endswith(b"\r\n\r\n" + body)
    assert b"abc123" not in response


def test_file_body_with_declared_trailers(serve):
    server = serve(app)
    assert get(server.port, "/file").endswith(b"\r\nfrom\r\n4\r\n a f\r\n3\r\nile\r\n0\r\nx-checksum: abc123\r\n\r\n")


def test_head_request_has_no_trailers(serve):
    server = serve(app)
    response = get(server.port, "/streamed", method="HEAD")
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"\r\n\r\n") and b"abc123" not in response


def test_fields_not_allowed_in_trailers_fail_the_app(serve):
    server = serve(app)
    assert get(server.port, "/forbidden").startswith(b"HTTP/1.1 500")


def test_connection_stays_usable_after_trailers(serve):
    """http.client reads (and discards) the trailer section: the next response on the same
    connection parses, so the framing was right."""
    server = serve(app)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for path, body in (("/streamed", b"part one\npart two\n"), ("/declared", b"whole body"),
                           ("/streamed", b"part one\npart two\n")):
            conn.request("GET", path, headers={"TE": "trailers"})
            response = conn.getresponse()
            assert response.status == 200 and response.read() == body
    finally:
        conn.close()


@requires_commands("curl", install="apt-get install curl")
def test_curl_sees_the_trailer_section(serve):
    server = serve(app)
    result = subprocess.run(["curl", "-sS", "--max-time", "10", "--raw", "-H", "TE: trailers",
                             server.url("/streamed")], capture_output=True, timeout=30, check=True)
    assert result.stdout.endswith(b"0\r\nx-checksum: abc123\r\nx-status: 0\r\n\r\n")


@pytest.mark.parametrize("te, accepted", [
    ("trailers", True), ("Trailers", True), ("gzip, trailers", True), ("deflate;q=0.5, trailers;q=1", True),
    ("gzip", False), ("", False), (None, False), ("trailersx", False)])
def test_accepts_trailers(te, accepted):
    assert accepts_trailers(te) is accepted


def test_last_chunk():
    assert last_chunk(None) == last_chunk([]) == b"0\r\n\r\n"
    assert last_chunk([("a", "1"), ("b", "2")]) == b"0\r\na: 1\r\nb: 2\r\n\r\n"
