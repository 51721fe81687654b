"""WebSockets through the reverse proxy: an HTTP/1.1 upgrade (the `websockets` client) and an
RFC 8441 extended CONNECT over HTTP/2 are tunnelled to a `websockets` server as member; the
tunnel closes after the tunnel timeout of `skitai.set_proxy_keep_alive`."""
import os
import sys
import threading
import time

import pytest
from proxyservers import proxy_server
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.server import serve

from skitai.testing import StartedServers

# the HTTP/2 distribution's WebSocket-over-HTTP/2 client (h2 + wsproto), used, not copied
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "skitai-http2", "tests"))


@pytest.fixture
def ws_member():
    paths = []

    def echo(websocket):
        paths.append((websocket.request.path, websocket.request.headers))
        for message in websocket:
            websocket.send(message)

    server = serve(echo, "127.0.0.1", 0, max_size=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.paths = paths
    server.member = f"127.0.0.1:{server.socket.getsockname()[1]}"
    yield server
    server.shutdown()
    thread.join(5)


@pytest.fixture
def servers():
    started = StartedServers(lambda **settings: proxy_server(settings.pop("mounts"), settings.pop("aliases"),
                                                             **settings))
    yield lambda mounts, aliases, **settings: started(mounts=mounts, aliases=aliases, **settings)
    started.stop()


def test_an_http11_websocket_is_tunnelled_to_the_member(servers, ws_member):
    front = servers({"/chat": "@ws/rooms"}, {"@ws": [ws_member.member]})
    with connect(f"ws://127.0.0.1:{front.port}/chat/1?x=2", open_timeout=10, close_timeout=5, max_size=None) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        big = os.urandom(3 * 1024 * 1024)
        ws.send(big)
        assert ws.recv(timeout=20) == big
    path, headers = ws_member.paths[0]
    assert path == "/rooms/1?x=2"
    assert headers["X-Forwarded-For"] == "127.0.0.1" and headers["Via"] == "1.1 skitai"


def test_an_idle_tunnel_closes_after_the_tunnel_timeout(servers, ws_member):
    front = servers({"/": "@ws"}, {"@ws": [ws_member.member]}, proxy_tunnel_keep_alive=1.0)
    with connect(f"ws://127.0.0.1:{front.port}/", open_timeout=10, close_timeout=2) as ws:
        ws.send("a")
        assert ws.recv(timeout=10) == "a"
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert time.monotonic() - started < 5


def test_an_rfc8441_websocket_over_http2_is_tunnelled_to_the_member(servers, ws_member):
    from h2peer import Client
    from h2ws import H2WebSocket

    front = servers({"/": "@ws"}, {"@ws": [ws_member.member]}, http2=True)
    client = Client(front.port)
    try:
        ws = H2WebSocket(client, "/live")
        assert ws.status == 200 and ws.tunnel
        ws.send_text("over h2")
        assert ws.receive() == "over h2"
        assert ws.close().code == 1000
    finally:
        client.close()
    assert ws_member.paths[0][0] == "/live"
