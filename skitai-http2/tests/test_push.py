"""HTTP/2 server push: `was.push(uri)` inside a WSGI app promises a GET that is served through
the mount table (static files and apps), only when the client takes pushes and within limits;
over HTTP/1.1 it is a no-op returning False."""
import os
import re
import subprocess
import threading

import h2.events
import h2.settings
import httpx
import pytest
from h2peer import Client, RawPeer
from hyperframe.frame import DataFrame, PushPromiseFrame

from skitai import was
from skitai.push import promised_request, push_target
from skitai.streamfields import BadRequest
from skitai.testing import requires_commands, wait_for

nghttp = requires_commands("nghttp", install="apt-get install nghttp2-client")

PUSHED = ["/images/A.png", "/images/B.png", "/made"]


def promise(environ, start_response):
    """The spec's example: push the images, then answer."""
    results = [was.push(uri) for uri in PUSHED]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [" ".join(map(str, results)).encode()]


def made(environ, start_response):
    """An app's output as a pushed response; a pushed response cannot push in turn."""
    again = was.push("/images/B.png")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"made {environ['REQUEST_METHOD']} {environ.get('HTTP_USER_AGENT')} "
            f"{environ.get('HTTP_COOKIE')} {environ['SERVER_PROTOCOL']} {again}".encode()]


def many(environ, start_response):
    results = [was.push(f"/images/B.png?n={n}") for n in range(20)]
    start_response("200 OK", [])
    return [" ".join(map(str, results)).encode()]


RELEASE = threading.Event()


def slow(environ, start_response):
    RELEASE.wait(10)
    start_response("200 OK", [])
    return [b"slow"]


def slow_pushes(environ, start_response):
    results = [was.push(f"/slow?n={n}") for n in range(10)]
    start_response("200 OK", [])
    return [" ".join(map(str, results)).encode()]


def environ_push(environ, start_response):
    """Without `was`: the environ callable the WSGI handler provides."""
    pushed = environ["skitai.push"]("/images/B.png", [("accept", "image/png")])
    start_response("200 OK", [])
    return [str(pushed).encode()]


ROUTES = {"/promise": promise, "/made": made, "/many": many, "/slow": slow, "/slow-pushes": slow_pushes,
          "/environ": environ_push}


def app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "images").mkdir(parents=True)
    (root / "images" / "A.png").write_bytes(os.urandom(100_000))  # beyond the initial window
    (root / "images" / "B.png").write_bytes(b"B image\n")
    return root


def pushes(events):
    return [event for event in events if isinstance(event, h2.events.PushedStreamReceived)]


def read_all(peer, stream_id):
    """The parent's response and every pushed one, by path: {path: (promised headers, headers,
    body)}. All data is credited as it arrives, as a browser does: pushed streams share the
    connection's window with the parent."""
    promised, ended = {}, set()
    while stream_id not in ended or not promised.keys() <= ended:
        for event in peer.until(lambda e: True):
            if isinstance(event, h2.events.DataReceived):
                peer.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.PushedStreamReceived):
                promised[event.pushed_stream_id] = dict(event.headers)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                ended.add(event.stream_id)
        peer.flush()
    headers, body = peer.response(stream_id, ack=False)
    return headers, body, {request[":path"]: (request, *peer.response(pushed_id, ack=False))
                           for pushed_id, request in promised.items()}


def test_push_static_files_and_app_output(serve, site):
    server = serve(("/", str(site)), ("/", app))
    peer = Client(server.port)
    try:
        stream_id = peer.request("/promise", extra=[("user-agent", "pushtest/1"), ("cookie", "sid=42"),
                                                    ("accept", "text/html")])
        headers, body, pushed = read_all(peer, stream_id)
        assert headers[":status"] == "200" and body == b"True True True"
        assert sorted(pushed) == sorted(PUSHED)
        for path, (request, response, data) in pushed.items():
            assert request[":method"] == "GET" and request[":scheme"] == "http"
            assert request[":authority"] == f"127.0.0.1:{server.port}"
            assert request["user-agent"] == "pushtest/1" and request["cookie"] == "sid=42"
            assert "accept" not in request  # the parent's Accept was for HTML, not for this
            assert response[":status"] == "200"
            if path.startswith("/images/"):
                assert data == (site / path[1:]).read_bytes()
                assert response["content-type"] == "image/png"
        assert pushed["/made"][2] == b"made GET pushtest/1 sid=42 HTTP/2.0 False"
    finally:
        peer.close()


def test_push_disabled_by_the_client(serve, site):
    server = serve(("/", str(site)), ("/", app))
    peer = Client(server.port, settings={h2.settings.SettingCodes.ENABLE_PUSH: 0})
    try:
        stream_id = peer.request("/promise")
        events = peer.until(lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id)
        assert not pushes(events)
        headers, body = peer.response(stream_id)
        assert headers[":status"] == "200" and body == b"False False False"
    finally:
        peer.close()


def test_push_over_http11_is_a_no_op(serve, site):
    server = serve(("/", str(site)), ("/", app))
    response = httpx.get(server.url("/promise"), timeout=10)
    assert response.http_version == "HTTP/1.1" and response.text == "False False False"


def test_pushes_per_request_are_capped(serve, site):
    server = serve(("/", str(site)), ("/", app))
    peer = Client(server.port)
    try:
        stream_id = peer.request("/many")
        headers, body, pushed = read_all(peer, stream_id)
        assert body.split() == [b"True"] * 16 + [b"False"] * 4
        assert len(pushed) == 16 and all(data == b"B image\n" for _, _, data in pushed.values())
    finally:
        peer.close()


def test_pushed_streams_respect_the_clients_concurrency_limit(serve, site):
    """The client takes 3 concurrent streams: of 10 pushes of a slow app, 3 are promised."""
    RELEASE.clear()
    server = serve(("/", str(site)), ("/", app))
    peer = Client(server.port, settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 3})
    try:
        stream_id = peer.request("/slow-pushes")
        events = peer.until(lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id)
        RELEASE.set()
        promised = pushes(events)
        assert len(promised) == 3
        for event in promised:
            assert peer.response(event.pushed_stream_id)[1] == b"slow"
    finally:
        RELEASE.set()
        peer.close()


def test_push_from_an_app_on_the_loop_thread(serve, site):
    """threads=0: the app runs on the loop thread and the promise is made at once."""
    server = serve(("/", str(site)), ("/", app), threads=0)
    peer = Client(server.port)
    try:
        headers, body, pushed = read_all(peer, peer.request("/promise"))
        assert body == b"True True True" and sorted(pushed) == sorted(PUSHED)
        assert pushed["/images/A.png"][2] == (site / "images/A.png").read_bytes()
    finally:
        peer.close()


def test_environ_push_with_extra_request_fields(serve, site):
    server = serve(("/", str(site)), ("/", app))
    peer = Client(server.port)
    try:
        headers, body, pushed = read_all(peer, peer.request("/environ"))
        assert body == b"True"
        request, response, data = pushed["/images/B.png"]
        assert request["accept"] == "image/png" and data == b"B image\n"
    finally:
        peer.close()


def test_pushed_responses_are_in_the_access_log(serve, site, capsys):
    server = serve(("/", str(site)), ("/", app), access_log=True)
    peer = Client(server.port)
    try:
        read_all(peer, peer.request("/promise"))
    finally:
        peer.close()
    seen = []

    def logged():
        seen.append(capsys.readouterr().out)
        text = "".join(seen)
        return all(f"GET {path} HTTP/2.0 0 200" in text for path in PUSHED + ["/promise"])

    wait_for(logged, timeout=10)


@nghttp
def test_nghttp_shows_the_promises_and_pushed_streams(serve, site):
    server = serve(("/", str(site)), ("/", app))
    result = subprocess.run(["nghttp", "-nv", server.url("/promise")], capture_output=True, timeout=60)
    out = result.stdout.decode()
    assert result.returncode == 0, out
    assert out.count("recv PUSH_PROMISE frame") == 3
    for path in PUSHED:
        assert f":path: {path}" in out
    for stream_id in (2, 4, 6):  # every promised stream gets its response, to the end
        assert re.search(rf"recv DATA frame <length=\d+, flags=0x01, stream_id={stream_id}>", out)
    assert out.count("; END_STREAM") >= 5  # the request, the response and three pushed ones


@nghttp
def test_nghttp_fetch_takes_the_pushed_bodies(serve, site):
    """`nghttp -a` writes every body it got, pushed ones included, to stdout."""
    server = serve(("/", str(site)), ("/", app))
    result = subprocess.run(["nghttp", "-a", server.url("/promise")], capture_output=True, timeout=60)
    out = result.stdout
    assert result.returncode == 0
    assert (site / "images/A.png").read_bytes() in out and b"B image\n" in out
    assert b"True True True" in out and b"made GET nghttp2/" in out


@nghttp
def test_nghttp_without_push(serve, site):
    server = serve(("/", str(site)), ("/", app))
    result = subprocess.run(["nghttp", "-nv", "--no-push", server.url("/promise")], capture_output=True, timeout=60)
    out = result.stdout.decode()
    assert "PUSH_PROMISE" not in out and ":status: 200" in out


# what may be pushed, sans-IO
@pytest.mark.parametrize("uri, target", [
    ("/images/A.png", "/images/A.png"),
    ("/search?q=a b", "/search?q=a%20b"),
    ("/caf\u00e9", "/caf%C3%A9"),
    ("/x#part", "/x"),
    ("http://example.com:8080/a?b", "/a?b"),
    ("HTTP://Example.com:8080/a", "/a"),
    ("https://example.com:8080/a", None),   # another scheme is another origin
    ("http://example.com/a", None),         # another port
    ("//evil.example/a", None),             # scheme-relative: another host
    ("http://evil.example/a", None),
    ("images/A.png", None),                 # relative: no origin-form target
    ("", None),
    ("http://[::1/a", None),                # unparsable
])
def test_push_target(uri, target):
    assert push_target(uri, "http", "example.com:8080") == target


def test_promised_request_inherits_and_validates():
    parent = [("host", "example.com"), ("user-agent", "ua"), ("accept", "text/html"),
              ("accept-encoding", "gzip"), ("cookie", "a=1"), ("authorization", "Bearer x")]
    block, fields = promised_request("https", "example.com", "/a", parent, [("Accept", "image/*"), ("cookie", "b=2")])
    assert block[:4] == [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.com"),
                         (b":path", b"/a")]
    assert dict(fields) == {"host": "example.com", "user-agent": "ua", "accept-encoding": "gzip",
                            "accept": "image/*", "cookie": "b=2"}
    for bad in ([("host", "evil.example")], [("connection", "close")], [("x bad", "1")], [("x", "a\nb")],
                [(":path", "/other")], [("x", "\u20ac")]):
        with pytest.raises(BadRequest):
            promised_request("https", "example.com", "/a", parent, bad)


def test_no_push_once_the_connection_is_going_away(serve, site):
    """A graceful stop sends GOAWAY; the request in flight is still answered, without pushes.
    (A raw peer: h2's client state machine takes nothing more after a GOAWAY.)"""
    started, proceed = threading.Event(), threading.Event()

    def late_push(environ, start_response):
        started.set()
        proceed.wait(10)
        pushed = was.push("/images/B.png")
        start_response("200 OK", [])
        return [str(pushed).encode()]

    server = serve(("/", str(site)), ("/", late_push))
    peer = RawPeer(server.port)
    try:
        peer.send(peer.request(1, "/late"))
        assert started.wait(10)
        server.server.request_stop()
        assert peer.goaway() is not None
        proceed.set()
        frames = list(peer.frames())
        assert not any(isinstance(frame, PushPromiseFrame) for frame in frames)
        data = [frame for frame in frames if isinstance(frame, DataFrame) and frame.stream_id == 1]
        assert b"".join(frame.data for frame in data) == b"False" and "END_STREAM" in data[-1].flags
    finally:
        proceed.set()
        peer.close()
