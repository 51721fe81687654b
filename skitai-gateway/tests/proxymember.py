"""A WSGI member for the reverse proxy's tests, served by gunicorn, waitress or Skitai.

* `/echo...`: the request as JSON: method, path, query, headers (CGI names without HTTP_), body
  size and sha256;
* `/big?size=N`: N bytes of `x`, streamed in 64 KiB pieces with a Content-Length;
* `/chunked?size=N`: the same without a Content-Length (an HTTP/1.1 server sends it chunked);
* `/sink?wait=S`: sleeps S seconds before reading the body (so a fast sender must be held back
  somewhere), then answers its size and sha256;
* `/slow?wait=S`: answers after S seconds; `/status/N`: answers status N.
"""
from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/big":
        size = int(query["size"])
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return _pieces(size)
    if path == "/chunked":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _pieces(int(query["size"]))
    if path == "/slow":
        time.sleep(float(query.get("wait", 1)))
    elif path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        start_response(f"{code} Status", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    elif path == "/sink":
        time.sleep(float(query.get("wait", 0)))
    digest, size = hashlib.sha256(), 0
    stream = environ["wsgi.input"]
    while True:
        data = stream.read(65536)
        if not data:
            break
        digest.update(data)
        size += len(data)
    headers = {key[5:]: value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key] = environ[key]
    answer = json.dumps({"method": environ["REQUEST_METHOD"], "path": path, "query": environ.get("QUERY_STRING", ""),
                         "headers": headers, "size": size, "sha256": digest.hexdigest()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]


def _pieces(size: int):
    piece = b"x" * 65536
    while size > 0:
        yield piece[:size]
        size -= len(piece)
