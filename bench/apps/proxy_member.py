"""The member behind the proxies of `bench/proxy.py` (run by gunicorn): `/hello` is the spec's
hello world, `/big?size=N` N bytes streamed in 256 KiB pieces with a Content-Length, `/sink`
reads the request body and answers its size."""
from hello import app as hello

PIECE = b"x" * (256 * 1024)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/big":
        size = int(environ["QUERY_STRING"].partition("size=")[2])
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return _pieces(size)
    if environ["PATH_INFO"] == "/sink":
        size = 0
        while data := environ["wsgi.input"].read(256 * 1024):
            size += len(data)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(size).encode()]
    return hello(environ, start_response)


def _pieces(size):
    while size > 0:
        yield PIECE[:size]
        size -= len(PIECE)
