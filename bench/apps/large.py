"""Large WSGI response bodies for the h2c-large scenarios: `GET /large/<N>m` answers N MiB.

Each body is one bytes object made on first use and kept, so the app hands the server the same
buffer every time and the server's own sending is what is measured. Peers load it as
`large:app`; the Skitai launch script mounts it at /large.
"""
import os

MiB = 1024 * 1024
_bodies: dict[int, bytes] = {}


def app(environ, start_response):
    name = (environ.get("SCRIPT_NAME", "") + environ["PATH_INFO"]).rsplit("/", 1)[-1]
    if not (name.endswith("m") and name[:-1].isdigit() and 0 < int(name[:-1]) <= 256):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"GET /large/<N>m, 1 <= N <= 256\n"]
    size = int(name[:-1])
    if size not in _bodies:
        _bodies[size] = os.urandom(MiB) * size
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [_bodies[size]]
