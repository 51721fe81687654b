"""`was.get.lb` and `was.get.map` over real upstreams: members picked by weight, fail-over on
connect failures and 502/503 answers, members marked down for every request of the worker and
tried again after their back-off; map calls every member."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

import skitai
from skitai import was
from skitai.backends import Alias, Member
from skitai.corequest import STA_NETERR, STA_NORMAL
from skitai.testing import free_port
from skitai_gateway import upstreams
from skitai_gateway.health import Balancer, MemberHealth


def ask(server, path="/", timeout=30):
    response = httpx.get(server.url(path), timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()


def members_of(*results):
    return [result.data["member"] if result.status == STA_NORMAL and result.status_code == 200
            else (result.status, result.status_code) for result in results]


def health(gateway):
    return gateway.server.was.get.upstreams.health


# the balancer alone, with a clock of the test's
class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def test_smooth_weighted_round_robin_spreads_members_by_weight():
    alias = Alias("@api", "http", (Member("a", weight=5), Member("b"), Member("c")))
    balancer = Balancer(MemberHealth())
    picks = "".join(balancer.order(alias)[0].host for _ in range(7))
    assert picks == "aabacaa"   # nginx's sequence for weights 5, 1, 1


def test_a_down_member_goes_last_until_its_backoff_passed_and_backoff_doubles():
    clock = Clock()
    alias = Alias("@api", "http", (Member("a"), Member("b")))
    health = MemberHealth(backoff=1.0, max_backoff=3.0, clock=clock)
    balancer = Balancer(health)
    health.failed(alias.members[0])
    assert [balancer.order(alias)[0].host for _ in range(3)] == ["b", "b", "b"]
    assert [member.host for member in balancer.order(alias)] == ["b", "a"]
    clock.now = 1.0
    assert health.is_up(alias.members[0])
    health.failed(alias.members[0])                  # failed again: 2 s now
    clock.now = 2.5
    assert not health.is_up(alias.members[0])
    clock.now = 3.0
    health.failed(alias.members[0])
    health.failed(alias.members[0])
    clock.now = 5.9                                  # capped at max_backoff = 3 s
    assert not health.is_up(alias.members[0])
    clock.now = 6.0
    assert health.is_up(alias.members[0])
    health.succeeded(alias.members[0])
    health.failed(alias.members[0])
    assert health._down[alias.members[0]][1] == 1.0   # a success starts the back-off afresh


# over sockets
def test_lb_spreads_calls_by_weight(serve, upstream):
    a, b = upstream("a"), upstream("b")
    gateway = serve({"/": lambda: members_of(*(was.get.lb("@api/echo").dispatch() for _ in range(6)))})
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{a.port} 2", f"127.0.0.1:{b.port} 1"])
    assert sorted(ask(gateway)) == ["a"] * 4 + ["b"] * 2


def test_lb_fails_over_a_refusing_member_and_every_request_skips_it(serve, upstream):
    dead = free_port()
    live = upstream("live")
    gateway = serve({
        "/lb": lambda: members_of(*(was.get.lb("@api/echo").dispatch() for _ in range(4))),
        "/plain": lambda: members_of(*(was.get("@api/echo").dispatch() for _ in range(2))),
    })
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{dead}", f"127.0.0.1:{live.port}"])
    assert ask(gateway, "/plain") == [[STA_NETERR, 502], "live"]   # no fail-over, but the next call knows
    assert ask(gateway, "/lb") == ["live"] * 4
    assert [member.port for member in health(gateway).down()] == [dead]


def test_lb_fails_over_a_member_answering_503(serve, upstream):
    busy, live = upstream("busy"), upstream("live")
    busy.app.status = 503
    gateway = serve({"/": lambda: members_of(*(was.get.lb("@api/echo").dispatch() for _ in range(3)))})
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{busy.port}", f"127.0.0.1:{live.port}"])
    assert ask(gateway) == ["live"] * 3
    assert busy.app.calls == 1                      # marked down after its first 503


def test_when_every_member_fails_lb_answers_the_last_outcome(serve, upstream):
    busy = upstream("busy")
    busy.app.status = 503
    dead = free_port()
    gateway = serve({"/": lambda: members_of(was.get.lb("@api/echo").dispatch())})
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{dead}", f"127.0.0.1:{busy.port}"])
    assert ask(gateway) == [[STA_NORMAL, 503]]


class LateHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"member": "late"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def late_server():
    """late_server(port) starts an http.server on `port`: a member that comes up later."""
    started = []

    def start(port):
        server = ThreadingHTTPServer(("127.0.0.1", port), LateHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def test_a_member_down_is_tried_again_after_its_backoff(serve, upstream, late_server):
    port = free_port()
    live = upstream("live")
    gateway = serve({"/": lambda: members_of(*(was.get.lb("@api/echo").dispatch() for _ in range(4)))})
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{port}", f"127.0.0.1:{live.port}"])
    health(gateway).backoff = 0.5
    assert ask(gateway) == ["live"] * 4
    late_server(port)
    answered = []
    for _ in range(20):   # bounded: the back-off is 0.5 s
        answered = ask(gateway)
        if "late" in answered:
            break
        time.sleep(0.2)
    assert "late" in answered and not health(gateway).down()


def test_map_calls_every_member(serve, upstream):
    a, b, c = upstream("a"), upstream("b"), upstream("c")
    c.app.status = 500

    def call():
        tasks = was.post.map("@api/echo", {"q": "Mozart"})
        results = tasks.dispatch(timeout=10)
        return {"members": tasks.meta["members"], "codes": [result.status_code for result in results],
                "names": [result.data["member"] for result in results],
                "bodies": [result.data.get("body") for result in results[:2]]}

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{server.port}" for server in (a, b, c)])
    answer = ask(gateway)
    assert answer["members"] == [f"127.0.0.1:{server.port}" for server in (a, b, c)]
    assert answer["codes"] == [200, 200, 500] and answer["names"] == ["a", "b", "c"]
    assert answer["bodies"] == ['{"q": "Mozart"}'] * 2


def test_map_needs_an_alias(serve):
    def call():
        try:
            was.get.map("http://127.0.0.1:1/")
        except ValueError as error:
            return str(error)

    assert "map() calls the members of an alias" in ask(serve({"/": call}))


def test_an_upload_fails_over_with_its_whole_body(serve, upstream):
    busy, live = upstream("busy"), upstream("live")
    busy.app.status = 503
    gateway = serve({"/": lambda: was.upload.lb("@api/echo", {"file": ("a.txt", b"payload")}).fetch()})
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{busy.port}", f"127.0.0.1:{live.port}"])
    echoed = ask(gateway)
    assert busy.app.calls == 1 and echoed["member"] == "live"
    assert 'filename="a.txt"' in echoed["body"] and "payload" in echoed["body"]


@pytest.fixture
def unanswered_port():
    """A port whose listener never accepts and whose accept queue is full: a connection to it
    is never established (the SYN goes unanswered), as with a member that is down hard."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(8):  # fill the queue; the kernel answers no more SYNs once it is full
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
        fillers.append(filler)
    yield listener.getsockname()[1]
    for sock in (*fillers, listener):
        sock.close()


def test_lb_fails_over_a_member_that_cannot_be_reached_in_the_connect_timeout(serve, upstream, unanswered_port,
                                                                               monkeypatch):
    monkeypatch.setattr(upstreams, "CONNECT_TIMEOUT", 0.5)
    live = upstream("live")
    gateway = serve({"/": lambda: members_of(was.get.lb("@api/echo", timeout=5).dispatch())})
    gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, [f"127.0.0.1:{unanswered_port}", f"127.0.0.1:{live.port}"])
    assert ask(gateway) == ["live"]
    assert [member.port for member in health(gateway).down()] == [unanswered_port]
