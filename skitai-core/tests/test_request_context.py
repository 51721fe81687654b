"""Request isolation of `contextvars`: every WSGI call (HTTP/1.1, WebSocket messages, threads=0
too) starts in a fresh context, so a value one request set is never seen by the next; a
corequest runs in a copy of its caller's context, so what the request set is seen there."""
import contextvars
import json
from urllib.parse import parse_qs

import httpx
import pytest
from websockets.sync.client import connect

import skitai
from skitai import was
from skitai.corequest import Driver
from skitai.plugin import hookimpl
from skitai.testing import ServerThread, StartedServers, wait_for

user = contextvars.ContextVar("user", default="-")
TIMEOUT = 10


def who_was_there(environ, start_response):
    """Answers the value it found, then sets the one the query names."""
    seen = user.get()
    user.set(parse_qs(environ["QUERY_STRING"]).get("user", ["-"])[0])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [seen.encode()]


@pytest.mark.parametrize("threads", [1, 0])
def test_a_variable_set_by_one_request_is_not_seen_by_the_next(serve, threads):
    server = serve(who_was_there, threads=threads)
    with httpx.Client(timeout=TIMEOUT) as client:  # one connection: one pool thread, one loop handle
        answers = [client.get(server.url(f"/?user={name}")).text for name in ("alice", "bob", "carol")]
    assert answers == ["-", "-", "-"]


@skitai.websocket("message", 60)
def per_message(environ, start_response):
    seen = user.get()
    user.set(environ["websocket.message"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"saw {seen}"]


@pytest.mark.parametrize("threads", [1, 0])
def test_each_websocket_message_call_starts_in_a_fresh_context(serve, threads):
    server = serve(per_message, threads=threads)
    with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        answers = []
        for name in ("alice", "bob"):
            ws.send(name)
            answers.append(ws.recv(timeout=TIMEOUT))
    assert answers == ["saw -", "saw -"]


ended = []


@skitai.websocket("message", 60)
def holds_per_message(environ, start_response):
    from skitai.services import at_request_end

    message = environ["websocket.message"]
    at_request_end(lambda: ended.append(message))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"ended before: {','.join(ended)}"]


def test_request_end_callbacks_run_after_each_websocket_message_call(serve):
    server = serve(holds_per_message)
    with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        answers = []
        for name in ("a", "b", "c"):
            ws.send(name)
            answers.append(ws.recv(timeout=TIMEOUT))
    assert answers == ["ended before: ", "ended before: a", "ended before: a,b"]


class WhoDriver(Driver):
    """`was.who()`: a driver coroutine on the worker loop answering the caller's variable."""

    async def execute(self):
        return user.get()


class WhoPlugin:
    @hookimpl
    def skitai_register_services(self, was):
        was.add_service("who", WhoDriver(was))


def corequests(environ, start_response):
    user.set(parse_qs(environ["QUERY_STRING"])["user"][0])
    answers = {"thread": was.Thread(user.get).fetch(timeout=TIMEOUT),
               "driver": was.who(use_cache=False).fetch(timeout=TIMEOUT)}
    returned = was.Thread(user.set, "changed in the corequest")
    returned.wait(timeout=TIMEOUT)
    answers["after"] = user.get()  # a copy: the corequest's changes stay in the corequest
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(answers).encode()]


def test_corequests_run_in_a_copy_of_the_callers_context():
    def with_who(**settings):
        server = ServerThread(**settings)
        server.kernel.pm.register(WhoPlugin())
        return server

    servers = StartedServers(with_who)
    try:
        server = servers(corequests, threads=2)
        with httpx.Client(timeout=TIMEOUT) as client:
            for name in ("alice", "bob"):
                assert client.get(server.url(f"/?user={name}")).json() == {
                    "thread": name, "driver": name, "after": name}
    finally:
        servers.stop()


def test_request_end_callbacks_run_after_the_response_closed_even_when_the_app_failed(serve):
    """`skitai.services.at_request_end`: how a service gives back what it held for a request
    (a database transaction's connection); one failing callback does not stop the others."""
    from skitai.services import at_request_end

    events = []

    class Body:
        def __iter__(self):
            yield b"body"

        def close(self):
            events.append("closed")

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        at_request_end(lambda: events.append(f"end {path}"))
        at_request_end(lambda: 1 / 0)
        at_request_end(lambda: events.append(f"still {path}"))
        if path == "/fail":
            raise RuntimeError("the app failed")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    server = serve(app)
    assert httpx.get(server.url("/ok"), timeout=TIMEOUT).text == "body"
    wait_for(lambda: len(events) >= 3)  # the answer may reach the client before they ran
    assert httpx.get(server.url("/fail"), timeout=TIMEOUT).status_code == 500
    wait_for(lambda: len(events) >= 5)
    assert events == ["closed", "end /ok", "still /ok", "end /fail", "still /fail"]
