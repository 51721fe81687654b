"""The reverse proxy over real sockets: `skitai.mount("/x", "@alias")` in front of Skitai and
gunicorn members, with httpx, curl and raw-socket clients."""
import json
import os
import socket
import subprocess
import sys

import httpx
import pytest
from proxyservers import RawMember, proxy_server

from skitai.mounting import MountError
from skitai.testing import ServerThread, StartedServers, free_port, make_certificates


@pytest.fixture
def servers():
    started = StartedServers(lambda **settings: settings.pop("make")(**settings))
    yield lambda make, **settings: started(make=make, **settings)
    started.stop()


@pytest.fixture
def skitai_member():
    from proxymember import app
    started = StartedServers(ServerThread)
    yield lambda: started(app)
    started.stop()


def proxy(servers, mounts, aliases, **settings):
    return servers(lambda **more: proxy_server(mounts, aliases, **more), **settings)


def echo(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_a_mounted_alias_forwards_path_query_and_body(servers, gunicorn):
    front = proxy(servers, {"/search": "@search"}, {"@search": [gunicorn.member]})
    seen = echo(httpx.post(front.url("/search/echo/a%20b?q=1&r=%2F"), content=b"hello", timeout=10))
    assert seen["method"] == "POST" and seen["path"] == "/echo/a b" and seen["query"] == "q=1&r=%2F"
    assert seen["size"] == 5 and seen["headers"]["CONTENT_LENGTH"] == "5"
    assert seen["headers"]["HOST"] == gunicorn.member
    assert seen["headers"]["X_FORWARDED_HOST"] == f"127.0.0.1:{front.port}"
    assert seen["headers"]["X_FORWARDED_FOR"] == "127.0.0.1"
    assert seen["headers"]["X_FORWARDED_PROTO"] == "http"
    assert seen["headers"]["FORWARDED"] == f"for=127.0.0.1;proto=http;host=127.0.0.1:{front.port}"
    assert seen["headers"]["VIA"] == "1.1 skitai"
    assert seen["headers"]["X_GTXN_ID"].startswith("GTID-") and seen["headers"]["X_LTXN_ID"] == "1001"


def test_a_base_path_in_the_mount_is_prefixed(servers, gunicorn):
    front = proxy(servers, {"/api": "@search/echo/v1", "/": "@search"}, {"@search": [gunicorn.member]})
    assert echo(httpx.get(front.url("/api/items?x=1"), timeout=10))["path"] == "/echo/v1/items"
    assert echo(httpx.get(front.url("/api"), timeout=10))["path"] == "/echo/v1"
    assert echo(httpx.get(front.url("/echo/root"), timeout=10))["path"] == "/echo/root"


def test_the_answer_keeps_its_status_fields_and_gets_via(servers, gunicorn):
    front = proxy(servers, {"/": "@search"}, {"@search": [gunicorn.member]})
    response = httpx.get(front.url("/status/418"), timeout=10)
    assert response.status_code == 418 and response.text == "ok"
    assert response.headers["via"] == "1.1 skitai"
    assert "gunicorn" in response.headers["server"]
    head = httpx.head(front.url("/big?size=1000"), timeout=10)
    assert head.status_code == 200 and head.headers["content-length"] == "1000" and head.content == b""


def test_answers_after_a_head_on_the_pooled_member_connection_stay_in_step(servers, gunicorn):
    # the member connection keeps its response parser between answers, except after a HEAD's
    # (whose Content-Length announces a body that never comes)
    front = proxy(servers, {"/": "@search"}, {"@search": [gunicorn.member]})
    with httpx.Client(timeout=10) as client:
        for round in range(3):
            assert echo(client.get(front.url(f"/echo/a?n={round}")))["query"] == f"n={round}"
            head = client.head(front.url("/big?size=1000"))
            assert head.status_code == 200 and head.headers["content-length"] == "1000" and head.content == b""
            assert echo(client.get(front.url(f"/echo/b?m={round}")))["query"] == f"m={round}"
            assert client.get(front.url("/status/418")).text == "ok"


def test_chunked_and_http10_clients_reach_the_member_reframed(servers, gunicorn):
    front = proxy(servers, {"/": "@search"}, {"@search": [gunicorn.member]})
    empty = echo(httpx.post(front.url("/echo"), content=b"", timeout=10))
    assert empty["size"] == 0 and empty["headers"]["CONTENT_LENGTH"] == "0"
    chunked = echo(httpx.post(front.url("/echo"), content=iter([b"abc", b"defg"]), timeout=10))
    assert chunked["size"] == 7 and chunked["headers"].get("TRANSFER_ENCODING") == "chunked"
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.0\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and json.loads(body)["size"] == 3
    assert json.loads(body)["headers"]["VIA"] == "1.0 skitai"


def test_hop_by_hop_fields_stop_at_the_proxy(servers, gunicorn):
    front = proxy(servers, {"/": "@search"}, {"@search": [gunicorn.member]})
    seen = echo(httpx.get(front.url("/echo"), headers={
        "Connection": "keep-alive, X-Secret", "X-Secret": "s", "Keep-Alive": "timeout=5", "TE": "deflate",
        "Proxy-Authorization": "Basic eDp5", "X-Kept": "k"}, timeout=10))["headers"]
    assert seen["X_KEPT"] == "k" and seen["TE"] == "trailers"  # the proxy's own: it passes trailers on
    for name in ("X_SECRET", "KEEP_ALIVE", "PROXY_AUTHORIZATION", "UPGRADE"):
        assert name not in seen


def test_forwarding_fields_from_a_client_are_replaced_unless_it_is_trusted(servers, gunicorn):
    spoof = {"X-Forwarded-For": "10.9.9.9", "Forwarded": "for=10.9.9.9", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "evil", "Via": "1.1 nginx"}
    front = proxy(servers, {"/": "@search"}, {"@search": [gunicorn.member]})
    seen = echo(httpx.get(front.url("/echo"), headers=spoof, timeout=10))["headers"]
    assert seen["X_FORWARDED_FOR"] == "127.0.0.1" and seen["FORWARDED"].startswith("for=127.0.0.1;")
    assert seen["X_FORWARDED_PROTO"] == "http" and seen["X_FORWARDED_HOST"] != "evil"
    assert seen["VIA"] == "1.1 nginx, 1.1 skitai"
    trusting = proxy(servers, {"/": "@search"}, {"@search": [gunicorn.member]}, proxy_trusted=["127.0.0.0/8"])
    seen = echo(httpx.get(trusting.url("/echo"), headers=spoof, timeout=10))["headers"]
    assert seen["X_FORWARDED_FOR"] == "10.9.9.9, 127.0.0.1"
    assert seen["FORWARDED"].startswith("for=10.9.9.9, for=127.0.0.1;")
    assert seen["X_FORWARDED_PROTO"] == "https" and seen["X_FORWARDED_HOST"] == "evil"


def test_a_skitai_member_and_curl(servers, skitai_member):
    member = skitai_member()
    front = proxy(servers, {"/": "@search"}, {"@search": [f"127.0.0.1:{member.port}"]})
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "-d", "a=1", front.url("/echo?x=1")],
                         capture_output=True, timeout=20)
    seen = json.loads(out.stdout)
    assert seen["method"] == "POST" and seen["query"] == "x=1" and seen["size"] == 3


SCRIPT = """
import skitai
{alias}
skitai.mount("/x", "{target}")
skitai.run(port={port})
"""


@pytest.mark.parametrize("alias, target, message", [
    ("", "@nowhere", "no alias '@nowhere' (declared: none)"),
    ("skitai.alias('@db', skitai.DB_SQLITE3, 'a.db')", "@db",
     "the reverse proxy forwards to PROTO_HTTP and PROTO_HTTPS aliases, not 'sqlite3'"),
])
def test_mounting_an_undeclared_or_non_http_alias_stops_the_start(tmp_path, alias, target, message):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT.format(alias=alias, target=target, port=free_port()))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0
    assert "skitai: error: " in done.stderr and message in done.stderr, done.stderr


def test_a_proxied_alias_takes_no_preference():
    with pytest.raises(MountError, match="no preference"):
        proxy_server({}, {}).kernel.mount("/x", "@a", "app", object())


def with_trailers(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"part one\n"
    yield b"part two\n"
    environ["skitai.set_trailers"]([("X-Checksum", "abc123")])


def raw_exchange(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = bytearray()
        while chunk := sock.recv(65536):
            answer += chunk
    return bytes(answer)


def test_the_members_trailers_reach_a_client_that_takes_them(servers):
    member = StartedServers(ServerThread)
    try:
        upstream = member(with_trailers)
        front = proxy(servers, {"/": "@m"}, {"@m": [f"127.0.0.1:{upstream.port}"]})
        answer = raw_exchange(front.port, b"GET /t HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head
        assert body.endswith(b"0\r\nx-checksum: abc123\r\n\r\n") and b"part one\n" in body
        plain = raw_exchange(front.port, b"GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert plain.endswith(b"0\r\n\r\n") and b"abc123" not in plain
    finally:
        member.stop()


def test_the_members_trailers_reach_an_http2_client(servers):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "skitai-http2", "tests"))
    from h2peer import Client  # the HTTP/2 distribution's test client, used, not copied

    member = StartedServers(ServerThread)
    try:
        upstream = member(with_trailers)
        front = proxy(servers, {"/": "@m"}, {"@m": [f"127.0.0.1:{upstream.port}"]}, http2=True)
        client = Client(front.port)
        try:
            stream = client.request("/t")
            headers, body = client.response(stream)
        finally:
            client.close()
        assert headers[":status"] == "200" and body == b"part one\npart two\n"
        assert client.trailers[stream] == {"x-checksum": "abc123"}
    finally:
        member.stop()


def test_an_http2_client_reaches_an_http11_member(servers, gunicorn):
    front = proxy(servers, {"/": "@search"}, {"@search": [gunicorn.member]}, http2=True)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        response = client.post(front.url("/echo?a=1"), content=b"x" * 100_000)
        streamed = client.post(front.url("/echo"), content=iter([b"ab", b"cd"]))
        big = client.get(front.url("/big?size=3000000"))
    assert response.http_version == "HTTP/2"
    seen = echo(response)
    assert seen["size"] == 100_000 and seen["headers"]["VIA"] == "2 skitai" and seen["query"] == "a=1"
    assert echo(streamed)["size"] == 4
    assert big.status_code == 200 and len(big.content) == 3_000_000


def test_an_https_member_is_verified_against_the_backend_ca(servers, tmp_path):
    from proxymember import app
    certificates = make_certificates(str(tmp_path))
    secure = StartedServers(ServerThread)
    try:
        member = secure(app, ssl_certfile=certificates.cert, ssl_keyfile=certificates.key)
        aliases = {"@secure": [f"localhost:{member.port}"]}
        trusting = servers(lambda **more: proxy_server({"/": "@secure"}, aliases, kind="https", **more),
                           backend_ca=certificates.ca)
        seen = echo(httpx.get(trusting.url("/echo"), timeout=10))
        assert seen["headers"]["HOST"] == f"localhost:{member.port}"
        untrusting = proxy(servers, {"/": "@secure"}, {"@secure": [f"localhost:{member.port}"]})
        untrusting_https = servers(lambda **more: proxy_server({"/": "@secure"}, aliases, kind="https", **more))
        assert httpx.get(untrusting_https.url("/echo"), timeout=10).status_code == 502
        # an http alias to an https member: the member refuses the plain request
        assert httpx.get(untrusting.url("/echo"), timeout=10).status_code in (400, 502)
    finally:
        secure.stop()


def test_proxy_settings_are_checked(monkeypatch):
    import skitai
    from skitai import api

    monkeypatch.setattr(api, "_kernel", None)
    skitai.set_proxy_keep_alive(channel=5, tunnel=50)
    skitai.set_proxy_trusted("127.0.0.1", "10.0.0.0/8")
    config = api.get_kernel().config
    assert (config.proxy_keep_alive, config.proxy_tunnel_keep_alive) == (5.0, 50.0)
    assert config.proxy_trusted == ["127.0.0.1", "10.0.0.0/8"]
    with pytest.raises(ValueError, match="seconds > 0"):
        skitai.set_proxy_keep_alive(channel=0)
    with pytest.raises(ValueError, match="set_proxy_trusted"):
        skitai.set_proxy_trusted("10.0.0.300")


def test_a_guard_set_on_the_alias_mounts_may_refuse_before_forwarding(servers, gunicorn):
    from skitai_gateway.reverseproxy import alias_mounts

    seen = []

    async def guard(exchange, alias):
        seen.append((exchange.path, alias.name))
        if exchange.header("authorization") != "Bearer ok":
            return "401 Unauthorized", [("WWW-Authenticate", "Bearer")], b"no"
        return None

    server = proxy_server({"/api": "@search", "/": "@search"}, {"@search": [gunicorn.member]})
    server.kernel.configure()  # the plugins' registrations first: a plugin's own guard would replace ours
    mounts = alias_mounts(server.kernel)
    assert len(mounts) == 2
    for mount in mounts:
        mount.guard = guard
    front = servers(lambda **more: server)
    refused = httpx.get(front.url("/api/echo"), timeout=10)
    assert refused.status_code == 401 and refused.text == "no" and refused.headers["www-authenticate"] == "Bearer"
    allowed = httpx.get(front.url("/api/echo"), headers={"Authorization": "Bearer ok"}, timeout=10)
    assert echo(allowed)["path"] == "/echo"
    assert seen == [("/api/echo", "@search"), ("/api/echo", "@search")]


def report_trailers(data: bytes) -> bytes | None:
    """A raw member's answer once a whole request arrived (h11 reads it): the request's trailer
    fields and body as JSON."""
    import h11

    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    body, framing = b"", []
    while (event := conn.next_event()) is not h11.NEED_DATA:
        if isinstance(event, h11.Request):
            framing = [name.decode() for name, _ in event.headers if name in (b"transfer-encoding", b"content-length")]
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            answer = json.dumps({"trailers": [[n.decode(), v.decode()] for n, v in event.headers],
                                 "body": body.decode(), "framing": framing}).encode()
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%b" % (len(answer), answer)
    return None


def test_a_chunked_client_s_request_trailers_reach_the_member(servers):
    member = RawMember(report_trailers, close=True)
    try:
        front = proxy(servers, {"/": "@m"}, {"@m": [member.member]})
        answer = raw_exchange(front.port, b"POST /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                                          b"X-Checksum: abc\r\nServer-Timing: db;dur=5\r\n\r\n")
        plain = raw_exchange(front.port, b"POST /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                         b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    finally:
        member.close()
    seen = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert seen == {"trailers": [["x-checksum", "abc"], ["server-timing", "db;dur=5"]], "body": "hello",
                    "framing": ["transfer-encoding"]}
    assert json.loads(plain.partition(b"\r\n\r\n")[2])["trailers"] == []
    assert member.received[0].endswith(b"\r\n5\r\nhello\r\n0\r\nx-checksum: abc\r\nserver-timing: db;dur=5\r\n\r\n")


def test_an_http2_client_s_request_trailers_reach_the_member(servers):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "skitai-http2", "tests"))
    from h2peer import Client, request_headers  # the HTTP/2 distribution's test client, used, not copied

    member = RawMember(report_trailers, close=True)
    try:
        front = proxy(servers, {"/": "@m"}, {"@m": [member.member]}, http2=True)
        client = Client(front.port)
        try:
            answers = []
            # a declared length too: the Trailer field says trailers follow, so the proxy chunks it
            for extra in ((), (("content-length", "5"), ("trailer", "x-checksum"))):
                stream = client.conn.get_next_available_stream_id()
                client.conn.send_headers(stream, request_headers(front.port, "/t", "POST", extra))
                client.conn.send_data(stream, b"hello")
                client.conn.send_headers(stream, [("x-checksum", "abc")], end_stream=True)
                client.flush()
                answers.append(client.response(stream))
        finally:
            client.close()
    finally:
        member.close()
    for headers, body in answers:
        assert headers[":status"] == "200", body
        assert json.loads(body) == {"trailers": [["x-checksum", "abc"]], "body": "hello",
                                    "framing": ["transfer-encoding"]}
