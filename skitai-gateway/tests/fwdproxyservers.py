"""Servers for the forward proxy's tests, on 127.0.0.1 and free ports:

* `proxy_server(**settings)`: a Skitai server with the gateway plugin and a forward proxy
  (`forward_proxy=ForwardProxySettings(...)`), its root app answering "origin app";
* `TcpServer(behaviour)`: a raw TCP destination, each connection on a thread of its own:
  `echo` (echoes until the client's FIN, then closes), `banner` (speaks first), `flood`
  (sends `FLOOD` bytes as fast as the peer takes them, counting `sent`), `hold` (reads and
  never answers); `peer_closed` is set when a client's connection ended.

A module of its own (not conftest) so test modules can import it.
"""
from __future__ import annotations

import json
import socket
import threading

from skitai.config import ForwardProxySettings
from skitai.testing import ServerThread
from skitai_gateway import plugin

FLOOD = 128 * 1024 * 1024  # well above what socket buffers hold at common autotuning maxima (~40 MiB)
LIMIT = 30.0  # no connection is served longer than this


def origin_app(environ, start_response):
    """Answers "origin app <path>"; `/headers` answers the request's target and the fields a
    proxy sets or must drop, as JSON; `/upload` the size of the body it read."""
    if environ["PATH_INFO"] == "/headers":
        fields = {name: environ.get("HTTP_" + name.upper().replace("-", "_")) for name in
                  ("host", "via", "forwarded", "x-forwarded-for", "proxy-authorization", "proxy-connection",
                   "x-gateway-claim", "authorization", "x-gtxn-id", "x-ltxn-id", "connection")}
        fields["query"] = environ.get("QUERY_STRING")
        body = json.dumps(fields).encode()
    elif environ["PATH_INFO"] == "/upload":
        body = str(len(environ["wsgi.input"].read())).encode()
    else:
        body = f"origin app {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def proxy_server(**settings) -> ServerThread:
    settings.setdefault("forward_proxy", ForwardProxySettings(allow=("127.0.0.1",), ports=("*",)))
    server = ServerThread(**settings)  # loads no entry points: the plugin is registered by hand
    server.kernel.pm.register(plugin)
    plugin.skitai_register_backends(backends=server.kernel.backends)
    return server


def proxy_handler(server: ServerThread):
    """The running server's ForwardProxy handler."""
    from skitai_gateway.forwardproxy import ForwardProxy

    return next(handler for handler in server.kernel.handlers.handlers if isinstance(handler, ForwardProxy))


class TcpServer:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = getattr(self, behaviour)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.accepted = threading.Event()
        self.peer_closed = threading.Event()
        self._stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stopping.set()
        self.sock.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.set()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(LIMIT)
        try:
            self.behaviour(conn)
        except OSError:
            pass
        finally:
            conn.close()
            self.peer_closed.set()

    @staticmethod
    def echo(conn: socket.socket) -> None:
        while data := conn.recv(65536):
            conn.sendall(data)

    @staticmethod
    def banner(conn: socket.socket) -> None:
        conn.sendall(b"220 hello from the destination\r\n")
        while data := conn.recv(65536):
            conn.sendall(data)

    def flood(self, conn: socket.socket) -> None:
        chunk = b"x" * 65536
        while self.sent < FLOOD:
            self.sent += conn.send(chunk[:FLOOD - self.sent])

    @staticmethod
    def hold(conn: socket.socket) -> None:
        while conn.recv(65536):
            pass
