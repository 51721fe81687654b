"""WSGI apps the HTTP/2 tests mount."""
from __future__ import annotations

import hashlib


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['SERVER_PROTOCOL']} {environ['REQUEST_METHOD']} {environ.get('HTTP_HOST', '')}".encode()]


def echo(environ, start_response):
    """Reads the body in pieces, as a streaming consumer does, and answers its size and digest."""
    digest, size = hashlib.sha256(), 0
    stream = environ["wsgi.input"]
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{size} {digest.hexdigest()} {environ['SERVER_PROTOCOL']}".encode()]


PIECE = bytes(range(256)) * 256  # 64 KiB
PIECES = 64                      # 4 MiB in all: far beyond any initial flow-control window


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(PIECES):
        yield PIECE


def piece(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [PIECE]


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def route(routes):
    """Paths outside `routes` answer 404: the frame fuzzer mutates paths, and an app error
    there would read as a server failure."""
    def app(environ, start_response):
        return routes.get(environ["PATH_INFO"], not_found)(environ, start_response)
    return app


APP = route({"/": hello, "/echo": echo, "/stream": stream, "/piece": piece})
