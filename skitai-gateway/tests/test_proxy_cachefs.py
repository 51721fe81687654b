"""cachefs in front of the reverse proxy (`skitai.enable_cachefs`): proxied GET and HEAD are
answered from stored responses by the corequests' rules; what may not be stored, or is too
big to hold, streams through."""
import threading

import httpx
import pytest
from proxyservers import proxy_server

from skitai.testing import ServerThread, StartedServers


class CountingApp:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        with self.lock:
            self.calls.append(path)
            count = len(self.calls)
        if path == "/big":
            size = 9 * 1024 * 1024
            start_response("200 OK", [("Cache-Control", "max-age=60"), ("Content-Length", str(size))])
            return [b"b" * size]
        control = "no-store" if path == "/private" else "max-age=60"
        body = f"answer {count}".encode()
        start_response("200 OK", [("Cache-Control", control), ("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def chain():
    app = CountingApp()
    started = StartedServers(ServerThread)
    member = started(app)
    front = StartedServers(lambda **settings: proxy_server({"/": "@m"}, {"@m": [f"127.0.0.1:{member.port}"]},
                                                           **settings))
    yield app, front(cachefs_memmax=32 * 1024 * 1024)
    front.stop()
    started.stop()


def test_a_cacheable_answer_is_served_from_the_cache(chain):
    app, front = chain
    with httpx.Client(timeout=10) as client:
        first = client.get(front.url("/page?a=1"))
        second = client.get(front.url("/page?a=1"))
        other = client.get(front.url("/page?a=2"))
        head = client.head(front.url("/page?a=1"))
    assert first.text == second.text == "answer 1" and "age" in second.headers
    assert second.headers["via"] == "1.1 skitai" and other.text == "answer 2"
    assert head.status_code == 200 and head.headers["content-length"] == "8" and head.content == b""
    assert app.calls == ["/page", "/page", "/page"]  # the HEAD was a miss of its own


def test_no_store_answers_and_requests_pass_through(chain):
    app, front = chain
    with httpx.Client(timeout=10) as client:
        assert client.get(front.url("/private")).text == "answer 1"
        assert client.get(front.url("/private")).text == "answer 2"
        client.get(front.url("/page"))
        fresh = client.get(front.url("/page"), headers={"Cache-Control": "no-store"})
    assert fresh.text == "answer 4"


def test_a_body_too_big_to_hold_streams_through_uncached(chain):
    app, front = chain
    with httpx.Client(timeout=20) as client:
        for _ in range(2):
            response = client.get(front.url("/big"))
            assert response.status_code == 200 and len(response.content) == 9 * 1024 * 1024
    assert app.calls == ["/big", "/big"]
