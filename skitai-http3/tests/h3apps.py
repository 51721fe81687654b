"""WSGI apps the HTTP/3 tests mount."""
from __future__ import annotations

import hashlib

PIECE = bytes(range(256)) * 256  # 64 KiB
PIECES = 64                      # 4 MiB in all: beyond aioquic's initial flow-control windows
TRAILERS = [("x-checksum", "abc"), ("x-count", "3")]


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['SERVER_PROTOCOL']} {environ['REQUEST_METHOD']} {environ.get('HTTP_HOST', '')} "
            f"{environ['wsgi.url_scheme']}".encode()]


def echo(environ, start_response):
    """Reads the body in pieces, as a streaming consumer does, and answers its size and digest."""
    digest, size = hashlib.sha256(), 0
    stream = environ["wsgi.input"]
    while chunk := stream.read(65536):
        digest.update(chunk)
        size += len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{size} {digest.hexdigest()}".encode()]


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(PIECES):
        yield PIECE


def trailers(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Trailer", "x-checksum, x-count")])
    yield b"one "
    yield b"two"
    environ["skitai.set_trailers"](TRAILERS)


def failing(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"partial"
    raise RuntimeError("the app broke mid-body")


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def route(routes):
    def app(environ, start_response):
        return routes.get(environ["PATH_INFO"], not_found)(environ, start_response)
    return app


APP = route({"/": hello, "/echo": echo, "/stream": stream, "/trailers": trailers, "/failing": failing})
