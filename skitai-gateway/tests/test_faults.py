"""Upstreams that fail on real sockets: each fault becomes its documented Result status, the
app's WSGI thread gets its answer, and the gateway closes the connection (the misbehaving
server sees its peer go)."""
import httpx
import pytest
from faultservers import FaultServer

from skitai import was
from skitai.corequest import STA_NETERR, STA_TIMEOUT
from skitai.testing import free_port


@pytest.fixture
def fault():
    servers = []

    def start(behaviour):
        server = FaultServer(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def outcome(url, **options):
    """The app's view of one call: status, status code, the exception's type, and what
    `fetch()` raised."""
    def call():
        result = was.get(url, **options).dispatch(timeout=options.get("timeout", 10) + 5)
        try:
            result.fetch()
            raised = None
        except Exception as error:
            raised = getattr(error, "code", type(error).__name__)
        return [result.status, result.status_code, type(result.expt).__name__, raised]
    return call


def ask(server, path="/"):
    response = httpx.get(server.url(path), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_refused_connection_is_a_network_error(serve):
    gateway = serve({"/": outcome(f"http://127.0.0.1:{free_port()}/")})
    assert ask(gateway)[:2] == [STA_NETERR, 502] and ask(gateway)[3] == 502


@pytest.mark.parametrize("behaviour", ["reset_mid_body", "garbage"])
def test_a_broken_or_malformed_answer_is_a_network_error(serve, fault, behaviour):
    upstream = fault(behaviour)
    gateway = serve({"/": outcome(upstream.url())})
    status, code, _, raised = ask(gateway)
    assert (status, code, raised) == (STA_NETERR, 502, 502)
    assert upstream.wait_peer_closed()


def test_an_answer_that_is_not_its_content_type_is_a_bad_gateway(serve, upstream):
    up = upstream()
    gateway = serve({"/": outcome(up.url("/bad-json"))})
    assert ask(gateway) == [STA_NETERR, 502, "BadUpstreamResponse", 502]


@pytest.mark.parametrize("behaviour", ["silent", "trickle"])
def test_a_slow_upstream_times_out_and_its_connection_is_closed(serve, fault, behaviour):
    upstream = fault(behaviour)
    gateway = serve({"/": outcome(upstream.url(), timeout=1)})
    status, code, _, raised = ask(gateway)
    assert (status, code, raised) == (STA_TIMEOUT, 504, 504)
    assert upstream.wait_peer_closed()


def test_a_wait_shorter_than_the_request_cancels_it_and_closes_its_connection(serve, fault):
    upstream = fault("silent")

    def call():
        result = was.get(upstream.url(), timeout=60).dispatch(timeout=0.5)
        return [result.status, result.status_code]

    gateway = serve({"/": call})
    assert ask(gateway) == [STA_TIMEOUT, 504]
    assert upstream.wait_peer_closed()


def test_an_endless_body_stops_at_max_size(serve, fault):
    upstream = fault("endless")
    gateway = serve({"/": outcome(upstream.url(), max_size=1024 * 1024, timeout=20)})
    assert ask(gateway) == [STA_NETERR, 502, "BadUpstreamResponse", 502]
    assert upstream.wait_peer_closed()


def test_after_faults_the_pool_holds_no_connection_and_serves_again(serve, fault, upstream):
    broken = [fault(name) for name in ("reset_mid_body", "garbage", "silent", "endless")]
    up = upstream()

    def call():
        # 3 s: the silent one times out; the others fail at once, even on a loaded machine
        tasks = was.Tasks([was.get(server.url(), timeout=3, max_size=65536) for server in broken])
        statuses = [result.status for result in tasks.dispatch(timeout=10)]
        return [statuses, was.get(up.url("/echo")).fetch()["member"]]

    gateway = serve({"/": call})
    assert ask(gateway) == [[STA_NETERR, STA_NETERR, STA_TIMEOUT, STA_NETERR], "a"]
    for server in broken:
        assert server.wait_peer_closed()
