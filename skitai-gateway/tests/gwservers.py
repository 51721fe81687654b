"""Servers for the gateway's tests, all on 127.0.0.1 and free ports.

* `gateway_server(routes, **settings)`: a Skitai server with the gateway plugin whose app calls
  `routes[PATH_INFO]()` in its WSGI thread (where `was.get` ... work) and answers its value as
  JSON;
* `UpstreamApp(name)`: a WSGI app for upstream Skitai servers that echoes the request as JSON
  (`/echo...`, with the transaction ids it received as `txn`), answers a status (`/status/503`),
  text, bytes, bad JSON, or after 0.2 s (`/slow`), and counts its calls.

A module of its own (not conftest) so test modules can import it.
"""
from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import parse_qs

from skitai.testing import ServerThread
from skitai_gateway import plugin


def gateway_server(routes, **settings) -> ServerThread:
    server = ServerThread(**settings)  # loads no entry points: the plugin is registered by hand
    server.kernel.pm.register(plugin)
    plugin.skitai_register_backends(backends=server.kernel.backends)
    server.mount("/", routes_app(routes))
    return server


def routes_app(routes):
    def app(environ, start_response):
        try:
            value = routes[environ["PATH_INFO"]]()
        except Exception as error:  # the test reads what went wrong
            start_response("500 Internal Server Error", [("Content-Type", "application/json")])
            return [json.dumps({"error": type(error).__name__, "message": str(error)}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(value).encode()]
    return app


class UpstreamApp:
    """What an upstream received, and `calls`: how many requests it answered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.ports: list[int] = []  # the client port of each request: one per pooled connection
        self.status: int | None = None  # when set, every request is answered with this status
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.calls += 1
            self.ports.append(int(environ["REMOTE_PORT"]))
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if path.startswith("/status/") or self.status:
            code = self.status or int(path.rsplit("/", 1)[1])
            return self._answer(start_response, f"{code} Status", "application/json", {"member": self.name})
        if path == "/slow":
            time.sleep(0.2)
            return self._answer(start_response, "200 OK", "application/json", {"member": self.name})
        if path == "/text":
            return self._answer(start_response, "200 OK", "text/plain; charset=utf-8", "héllo".encode())
        if path == "/bytes":
            return self._answer(start_response, "200 OK", "application/octet-stream", b"\x00\x01\xff")
        if path == "/bad-json":
            return self._answer(start_response, "200 OK", "application/json", b"{not json")
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        user = base64.b64decode(authorization[6:]).decode() if authorization.startswith("Basic ") else None
        return self._answer(start_response, "200 OK", "application/json", {
            "member": self.name, "method": environ["REQUEST_METHOD"], "path": path,
            "query": parse_qs(environ.get("QUERY_STRING", "")), "content_type": environ.get("CONTENT_TYPE"),
            "accept": environ.get("HTTP_ACCEPT"), "user": user, "body": body.decode("latin-1"),
            "txn": [environ.get("HTTP_X_GTXN_ID"), environ.get("HTTP_X_LTXN_ID")],
            "protocol": environ["SERVER_PROTOCOL"],
        })

    @staticmethod
    def _answer(start_response, status, content_type, value):
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data)))])
        return [data]
