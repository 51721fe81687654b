"""The manual's WebSocket examples in a Flask app, word for word (plus routes to tell the
request context and `was` work inside the generator)."""
from __future__ import annotations

import pytest
from websockets.sync.client import connect

import skitai
from skitai import was

flask = pytest.importorskip("flask")
request = flask.request
TIMEOUT = 10


def make_app():
    app = flask.Flask("wsapp")

    @app.route("/echo3")
    @skitai.websocket(60)  # timeout
    def echo3():
        ws = request.environ["websocket"]
        while 1:
            message = yield
            if not message:
                return  # strop iterating
            yield "ECHO:" + message
            assert ws is request.environ["websocket"]

    @app.route("/websocket/echo")
    @was.websocket("message", 60)
    def echo():
        message = request.args.get("message")
        request.environ["websocket"].send("You said," + message)
        request.environ["websocket"].send("I said acknowledge")

    @app.route("/context/<name>")
    @skitai.websocket(60)
    def context(name):
        message = yield
        yield f"{name} {request.path} {request.args.get('q')} {was.env['PATH_INFO']} {message}"

    @app.route("/plain")
    def plain():
        return "plain"

    return app


@pytest.fixture
def server(serve):
    return serve(make_app())


def test_the_generator_example(server):
    with connect(f"ws://127.0.0.1:{server.port}/echo3", open_timeout=TIMEOUT) as ws:
        for word in ("Hello!", "again"):
            ws.send(word)
            assert ws.recv(timeout=TIMEOUT) == "ECHO:" + word


def test_the_direct_send_example(server):
    with connect(f"ws://127.0.0.1:{server.port}/websocket/echo", open_timeout=TIMEOUT) as ws:
        ws.send("hi")
        assert [ws.recv(timeout=TIMEOUT) for _ in range(2)] == ["You said,hi", "I said acknowledge"]
        ws.send("there")
        assert ws.recv(timeout=TIMEOUT) == "You said,there"


def test_the_request_context_and_was_live_on_in_the_generator(server):
    with connect(f"ws://127.0.0.1:{server.port}/context/alice?q=1", open_timeout=TIMEOUT) as ws:
        ws.send("m")
        assert ws.recv(timeout=TIMEOUT) == "alice /context/alice 1 /context/alice m"


def test_flask_routes_decide(server):
    from websockets.exceptions import InvalidStatus

    for path, status in (("/nowhere", 404), ("/plain", 200)):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=TIMEOUT)
        assert refused.value.response.status_code == status
    import httpx

    assert httpx.get(server.url("/echo3")).status_code == 426
