"""The request handler that takes WebSocket handshakes for mounted WSGI apps.

`router.WebSocketRouter` sits before the mount table: a handshake is routed as usual, and when it
reaches a WSGI app, `WebSocketEndpoint` serves it instead of the app's plain handler. The app
is called once for the handshake, with `environ["websocket"]`; it accepts through
`skitai.websocket`, and then the exchange switches protocols and the connection belongs to
the WebSocket. An app that does not accept (no such route, a view without the decorator, an
error) answers the handshake as a plain HTTP request, which a client takes as a refusal.
"""
from __future__ import annotations

from ..exchange import Exchange, RequestHandler
from ..statuses import error_body, error_headers, status_line
from ..wsgi.handler import WSGIApp, WSGIResponse
from .channel import WebSocket
from .connection import WebSocketConnection
from .handshake import Handshake, HandshakeError, accept, read_handshake
from .session import WebSocketSession


class WebSocketEndpoint(RequestHandler):
    def __init__(self, app: WSGIApp, server) -> None:
        self.app = app
        self.server = server

    def handle(self, exchange: Exchange) -> None:
        try:
            handshake = read_handshake(exchange.method, exchange.version, exchange.headers,
                                       exchange.connect_protocol)
        except HandshakeError as error:
            exchange.send_response(status_line(error.status),
                                   error_headers() + error.headers + [("Connection", "close")],
                                   error_body(error.status, error.reason))
            return
        app = self.app
        environ = app.environ_for(exchange)
        # The app sees the handshake as a plain GET (over HTTP/2 too): a framework that knows
        # WebSocket routes of its own (werkzeug's ws:// rules) would refuse an ordinary route.
        environ["REQUEST_METHOD"] = "GET"
        environ.pop("HTTP_UPGRADE", None)
        websocket = WebSocket(exchange.loop, app.pool, app.app, environ)
        environ["websocket"] = websocket
        environ["websocket.event"] = "handshake"
        websocket.environ = dict(environ)  # the drivers' base, before the app adds to it
        response = HandshakeResponse(exchange, app.pool is not None, app.write_timeout, websocket, handshake,
                                     self.server)
        app.dispatch(exchange, environ, response)


class HandshakeResponse(WSGIResponse):
    """The handshake call's response: switch protocols when the app accepted, else answer it."""

    def __init__(self, exchange: Exchange, threaded: bool, write_timeout: float, websocket: WebSocket,
                 handshake: Handshake, server) -> None:
        super().__init__(exchange, threaded, write_timeout)
        self.websocket = websocket
        self.handshake = handshake
        self.server = server

    def send_result(self, result) -> bool:
        if not self.websocket.accepted:
            return super().send_result(result)
        self._call(self._switch)
        return False

    def _switch(self) -> None:
        exchange, websocket = self.exchange, self.websocket
        if exchange.aborted or exchange.finished:
            websocket.input_ended(1006)  # the client left during the handshake call
            return
        limit = self.server.config.websocket_max_message_size
        status, headers, extensions = accept(self.handshake, limit)
        session = WebSocketSession(extensions, limit)
        exchange.open_tunnel(status, headers, WebSocketConnection(self.server, websocket, session))
