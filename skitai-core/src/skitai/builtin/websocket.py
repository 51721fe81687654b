"""WebSocket as a built-in plugin: handshakes for mounted WSGI apps are taken before the mount
table answers them as plain requests (over HTTP/1.1, and over HTTP/2 where a plugin carries
RFC 8441's extended CONNECT)."""
from ..plugin import hookimpl
from ..websocket.router import WebSocketRouter

WEBSOCKET_PRIORITY = 900  # after plugins' own handlers, before the mount table (1000)


@hookimpl
def skitai_register_handlers(handlers):
    handlers.add(WebSocketRouter(), priority=WEBSOCKET_PRIORITY)
