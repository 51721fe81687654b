"""A request's lifetime over HTTP/2: every stream's WSGI call starts in a fresh `contextvars`
context, a stream the client reset is never run once it waited for a thread, and a reset in the
middle of a request body ends the app's read at once."""
import contextvars
from urllib.parse import parse_qs

import httpx
import pytest
from h2.errors import ErrorCodes
from h2peer import Client

from skitai.body import ClientDisconnected
from skitai.testing import GatedApp, wait_for

TIMEOUT = 10
user = contextvars.ContextVar("user", default="-")


def who_was_there(environ, start_response):
    seen = user.get()
    user.set(parse_qs(environ["QUERY_STRING"]).get("user", ["-"])[0])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [seen.encode()]


@pytest.mark.parametrize("threads", [1, 0])
def test_a_variable_set_by_one_stream_is_not_seen_by_the_next(serve, threads):
    server = serve(who_was_there, threads=threads)
    with httpx.Client(http1=False, http2=True, timeout=TIMEOUT) as client:
        answers = []
        for name in ("alice", "bob", "carol"):
            response = client.get(server.url(f"/?user={name}"))
            assert response.http_version == "HTTP/2"
            answers.append(response.text)
    assert answers == ["-", "-", "-"]


def test_a_stream_reset_while_it_waited_for_a_thread_is_never_run(serve, capsys):
    gate = GatedApp()
    server = serve(gate, threads=1, access_log=True)
    client = Client(server.port)
    try:
        held = client.request("/hold")
        assert gate.held.wait(TIMEOUT)
        for _ in range(10):
            client.conn.reset_stream(client.request("/queued"), ErrorCodes.CANCEL)
        client.flush()
        wait_for(lambda: server.server.pool.queued == 10, TIMEOUT)  # read, and queued before the reset
        gate.release()
        assert client.response(held)[1] == b"/hold"
        assert client.response(client.request("/probe"))[1] == b"/probe"
    finally:
        gate.release()
        client.close()
    server.__exit__(None, None, None)  # stopped: the request log is flushed
    assert gate.calls == ["/hold", "/probe"]
    assert capsys.readouterr().out.count(" GET /queued HTTP/2.0 0 499 0 ") == 10  # logged as aborted


def test_a_stream_reset_mid_body_frees_its_thread_at_once(serve):
    gate = GatedApp()
    server = serve(gate, threads=1)  # the request timeout stays 30 s
    client = Client(server.port, timeout=5)  # the next answer must come well before it
    try:
        upload = client.conn.get_next_available_stream_id()
        client.conn.send_headers(upload, [(":method", "POST"), (":path", "/upload"), (":scheme", "http"),
                                          (":authority", f"127.0.0.1:{server.port}"),
                                          ("content-length", "1000000")])
        client.conn.send_data(upload, b"abc")
        client.flush()
        assert gate.reading.wait(TIMEOUT)
        client.conn.reset_stream(upload, ErrorCodes.CANCEL)
        client.flush()
        headers, body = client.response(client.request("/next"))
    finally:
        client.close()
    assert (headers[":status"], body) == ("200", b"/next")
    assert len(gate.errors) == 1 and isinstance(gate.errors[0], ClientDisconnected)
