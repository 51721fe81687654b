"""Response trailers over HTTP/2: what a WSGI app sets with `environ["skitai.set_trailers"]`
ends the stream as a last HEADERS frame, whatever the body's shape."""
import io
import subprocess

import h2.events
import pytest
from h2peer import Client

from skitai.testing import requires_commands

TRAILERS = [("X-Checksum", "abc123"), ("grpc-status", "0")]
EXPECTED = {"x-checksum": "abc123", "grpc-status": "0"}


def streamed(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Trailer", "x-checksum, grpc-status")])
    yield b"part one\n"
    yield b"part two\n"
    environ["skitai.set_trailers"](TRAILERS)


def listed(environ, start_response):
    """No `Trailer` header needed on HTTP/2: a list body keeps its Content-Length."""
    start_response("200 OK", [])
    environ["skitai.set_trailers"](TRAILERS)
    return [b"whole body"]


def empty(environ, start_response):
    start_response("200 OK", [])
    environ["skitai.set_trailers"](TRAILERS)
    return []


def file_body(environ, start_response):
    start_response("200 OK", [])
    environ["skitai.set_trailers"](TRAILERS)
    return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 100_000))


def replaced(environ, start_response):
    """The last call wins."""
    start_response("200 OK", [])
    environ["skitai.set_trailers"]([("x-first", "1")])
    yield b"body"
    environ["skitai.set_trailers"](TRAILERS)


ROUTES = {"/streamed": (streamed, b"part one\npart two\n"), "/listed": (listed, b"whole body"),
          "/empty": (empty, b""), "/file": (file_body, b"x" * 100_000), "/replaced": (replaced, b"body")}


def app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]][0](environ, start_response)


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_trailers_end_the_stream(serve, path):
    server = serve(app)
    peer = Client(server.port)
    try:
        stream_id = peer.request(path)
        headers, body = peer.response(stream_id)
        assert headers[":status"] == "200" and body == ROUTES[path][1]
        assert peer.trailers[stream_id] == EXPECTED
        if path == "/listed":
            assert headers["content-length"] == "10"
    finally:
        peer.close()


def test_trailers_frame_carries_end_stream(serve):
    """The body ends without END_STREAM; the trailers' HEADERS frame carries it."""
    server = serve(app)
    peer = Client(server.port)
    try:
        stream_id = peer.request("/streamed")
        events = peer.until(lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id)
        trailers = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
        assert len(trailers) == 1 and trailers[0].stream_ended is not None
        data = [e for e in events if isinstance(e, h2.events.DataReceived)]
        assert data and all(e.stream_ended is None for e in data)
    finally:
        peer.close()


def test_head_request_ends_on_the_head(serve):
    server = serve(app)
    peer = Client(server.port)
    try:
        stream_id = peer.request("/streamed", method="HEAD")
        headers, body = peer.response(stream_id)
        assert headers[":status"] == "200" and body == b"" and stream_id not in peer.trailers
    finally:
        peer.close()


@requires_commands("curl", install="apt-get install curl")
def test_curl_shows_the_trailers(serve):
    server = serve(app)
    result = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge", "-D", "-",
                             server.url("/streamed")], capture_output=True, timeout=30, check=True)
    out = result.stdout
    assert out.startswith(b"HTTP/2 200")
    assert out.endswith(b"part one\npart two\nx-checksum: abc123\r\ngrpc-status: 0\r\n")
