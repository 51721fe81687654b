"""The request handler that spots WebSocket handshakes before the mount table answers them.

It is registered by every server (the built-in websocket plugin), so it imports nothing of the
WebSocket machinery until a request asks to upgrade: wsproto and h11, which that machinery
brings, cost a worker about 2 MB, and a server whose clients never open a WebSocket does not
need them. A handshake that reaches a WSGI app is served by `endpoint.WebSocketEndpoint`.
"""
from __future__ import annotations

from ..exchange import Exchange, RequestHandler
from ..wsgi.handler import WSGIApp


class WebSocketRouter(RequestHandler):
    def bind(self, server) -> None:
        self.server = server

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        if exchange.upgrade is None and exchange.connect_protocol is None:
            return None  # almost every request: no WebSocket asked for, and no call to see that
        from .endpoint import WebSocketEndpoint
        from .handshake import asks_for_websocket

        if not asks_for_websocket(exchange):
            return None
        handlers = self.server.handlers
        for handler in handlers[handlers.index(self) + 1:]:
            chosen = handler.resolve(exchange)
            if chosen is not None:
                return WebSocketEndpoint(chosen, self.server) if isinstance(chosen, WSGIApp) else chosen
        return None
