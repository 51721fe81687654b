"""A failure on one stream stays on that stream: a handler whose `resolve()` raises answers 500
there and the connection serves on; an answer made for a stream the client has already reset
is dropped quietly (h2 handles all the frames of a read before the server acts on its events,
so the stream may be gone by the time its request is answered)."""
import logging

import h2.events
from apps import APP
from h2peer import Client, RawPeer
from h2server import h2_server
from hyperframe.frame import GoAwayFrame, HeadersFrame, RstStreamFrame
from test_websocket_h2 import MOUNTS

from skitai.plugin import RequestHandler


class BrokenResolve(RequestHandler):
    """A plugin handler with a bug: resolving `/boom` raises."""

    def resolve(self, exchange):
        if exchange.path == "/boom":
            raise KeyError("boom")
        return None


def tracebacks(caplog):
    return [record for record in caplog.records if record.exc_info]


def test_a_raising_resolve_fails_only_its_own_stream(caplog):
    server = h2_server()
    server.kernel.handlers.add(BrokenResolve(), priority=10)
    server.mount("/", APP)
    with server:
        client = Client(server.port)
        try:
            streams = [client.request(path) for path in ("/", "/boom", "/")]
            answers = [client.response(stream_id) for stream_id in streams]
            assert [headers[":status"] for headers, _ in answers] == ["200", "500", "200"]
            assert client.response(client.request("/"))[0][":status"] == "200"  # still open
            assert not client.closed
        finally:
            client.close()
    logged = tracebacks(caplog)
    assert len(logged) == 1
    assert "test_stream_failures.BrokenResolve failed to resolve" in logged[0].getMessage()
    assert "GET /boom" in logged[0].getMessage()


BAD_CONNECT = [(":method", "CONNECT"), (":protocol", "websocket"), (":path", "/ws"), (":scheme", "http"),
               (":authority", "x"), ("sec-websocket-version", "99")]


def test_an_answer_for_a_stream_reset_in_the_same_read_is_dropped(serve, caplog):
    """The WebSocket endpoint refuses a bad extended CONNECT at once, on the loop thread; the
    client's RST_STREAM came in the same read, so h2 has closed (or forgotten) the stream."""
    server = serve(*MOUNTS)
    peer = RawPeer(server.port)
    try:
        peer.send(peer.headers(1, BAD_CONNECT, end_stream=False), peer.reset(1))
        peer.send(peer.headers(3, BAD_CONNECT, end_stream=True), peer.reset(3))
        peer.send(peer.request(5, "/"))
        frames = []
        for frame in peer.frames(timeout=10):
            frames.append(frame)
            if frame.stream_id == 5 and "END_STREAM" in frame.flags:
                break
    finally:
        peer.close()
    assert not [frame for frame in frames if isinstance(frame, (GoAwayFrame, RstStreamFrame))]
    assert not [frame for frame in frames if isinstance(frame, HeadersFrame) and frame.stream_id in (1, 3)]
    assert tracebacks(caplog) == []


def test_a_response_body_for_a_reset_stream_is_dropped(serve, caplog):
    """A streamed answer whose stream the client resets while it is flowing ends there; the
    connection keeps serving."""
    server = serve(APP)
    client = Client(server.port)
    try:
        stream_id = client.request("/stream")
        client.until(lambda e: isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id)
        client.conn.reset_stream(stream_id)
        client.flush()
        assert client.response(client.request("/"))[0][":status"] == "200"
    finally:
        client.close()
    assert tracebacks(caplog) == []
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
