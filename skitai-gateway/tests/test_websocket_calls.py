"""`was.ws` and the PROTO_WS / PROTO_WSS aliases against real WebSocket servers (the
`websockets` library's, see `wsupstream`): one message and its answer per call, by URL and by
alias, with lb fail-over, map, TLS, and the faults' statuses."""
import json
import socket
import ssl

import httpx
import pytest
from wsupstream import WebSocketUpstream

import skitai
from skitai import HTTPError, was
from skitai.corequest import STA_NETERR, STA_NORMAL, STA_REQFAIL, STA_TIMEOUT
from skitai.testing import ServerThread, StartedServers, make_certificates


def ask(server, path="/", timeout=20):
    response = httpx.get(server.url(path), timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def ws_upstream():
    started = []

    def start(name="a", ssl=None):
        server = WebSocketUpstream(name, ssl).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


def test_ws_sends_text_bytes_and_json_and_answers_the_reply(ws_upstream, serve):
    up = ws_upstream()

    def call():
        text = was.ws(up.url("/echo"), "hello")
        binary = was.ws(up.url("/echo"), b"\x01\x02\x03")
        as_json = was.ws(up.url("/echo"), {"q": "Mozart"}, auth=("hans", "secret"))
        reply = json.loads(text.fetch(timeout=10))
        encoded = json.loads(as_json.fetch(timeout=10))
        result = binary.dispatch(timeout=10)
        return {"text": [reply["echo"], reply["type"], reply["txn"][1]],
                "binary": [result.status, result.status_code, list(result.data)],
                "json": [encoded["echo"], encoded["auth"]]}

    answer = ask(serve({"/": call}))
    assert answer["text"][:2] == ["hello", "text"] and answer["text"][2].startswith("100")
    assert answer["binary"] == [STA_NORMAL, 200, [3, 2, 1]]
    assert answer["json"] == ['{"q": "Mozart"}', "Basic aGFuczpzZWNyZXQ="]


@skitai.websocket(60)
def skitai_echo(environ, start_response):
    """A Skitai WebSocket app (the manual's generator style): each message answered once."""
    while True:
        message = yield
        if not message:
            return
        yield f"ECHO:{message} via {environ['PATH_INFO']}" if isinstance(message, str) else message[::-1]


def test_ws_to_a_skitai_websocket_app(serve):
    servers = StartedServers(ServerThread)
    up = servers(skitai_echo)
    try:
        def call():
            text = was.ws("@skitai/echo", "hello").fetch(timeout=10)
            binary = was.ws.lb("@skitai/echo", b"\x01\x02").fetch(timeout=10)
            return [text, list(binary)]

        gateway = serve({"/": call})
        gateway.kernel.aliases.add("@skitai", skitai.PROTO_WS, f"127.0.0.1:{up.port}")
        assert ask(gateway) == ["ECHO:hello via /echo", [2, 1]]
    finally:
        servers.stop()


def test_ws_alias_lb_fails_over_and_map_reaches_every_member(ws_upstream, serve):
    a, b = ws_upstream("a"), ws_upstream("b")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]

    def call():
        balanced = [json.loads(was.ws.lb("@chat/echo", "hi").fetch(timeout=10))["member"] for _ in range(4)]
        tasks = was.ws.map("@pair/echo", "all")
        mapped = tasks.dispatch(timeout=10)
        return {"balanced": balanced, "mapped": [json.loads(result.data)["member"] for result in mapped],
                "auth": json.loads(mapped[0].data)["auth"], "members": tasks.meta["members"]}

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@chat", skitai.PROTO_WS, [f"127.0.0.1:{dead} 10", f"127.0.0.1:{a.port}"])
    gateway.kernel.aliases.add("@pair", skitai.PROTO_WS, [f"bot:pw@127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    answer = ask(gateway)
    assert answer["balanced"] == ["a"] * 4
    assert answer["mapped"] == ["a", "b"] and answer["auth"] == "Basic Ym90OnB3"
    assert answer["members"] == [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]


def test_wss_alias_verifies_the_certificate(ws_upstream, serve, tmp_path):
    certificates = make_certificates(str(tmp_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert, certificates.key)
    up = ws_upstream("secure", ssl=context)

    def call():
        return json.loads(was.ws("@secure/echo", "tls").fetch(timeout=10))["member"]

    trusting = serve({"/": call}, backend_ca=certificates.ca)
    trusting.kernel.aliases.add("@secure", skitai.PROTO_WSS, f"localhost:{up.port}")
    assert ask(trusting) == "secure"

    def untrusted():
        result = was.ws("@secure/echo", "tls").dispatch(timeout=10)
        return [result.status, result.status_code, "CERTIFICATE_VERIFY_FAILED" in str(result.expt)]

    stranger = serve({"/": untrusted})
    stranger.kernel.aliases.add("@secure", skitai.PROTO_WSS, f"localhost:{up.port}")
    assert ask(stranger) == [STA_NETERR, 502, True]


def test_ws_faults_have_the_documented_statuses(ws_upstream, serve):
    up = ws_upstream()

    def call():
        outcomes = {}
        for name, task in {
            "refused": was.ws(up.url("/status/403"), "x"),
            "mute": was.ws(up.url("/mute"), "x"),
            "slow": was.ws(up.url("/slow"), "x", timeout=0.3),
            "big": was.ws(up.url("/big"), "x", max_size=1000),
            "not-ws": was.ws("http://127.0.0.1/", "x"),
            "http-alias": was.ws("@web/", "x"),
            "ws-alias-by-get": was.get("@chat/echo"),
        }.items():
            result = task.dispatch(timeout=10)
            outcomes[name] = [result.status, result.status_code]
        try:
            was.ws(up.url("/status/404"), "x").fetch(timeout=10)
        except HTTPError as error:
            outcomes["fetch"] = error.code
        return outcomes

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@web", skitai.PROTO_HTTP, f"127.0.0.1:{up.port}")
    gateway.kernel.aliases.add("@chat", skitai.PROTO_WS, f"127.0.0.1:{up.port}")
    assert ask(gateway) == {
        "refused": [STA_NORMAL, 403], "mute": [STA_NETERR, 502], "slow": [STA_TIMEOUT, 504],
        "big": [STA_NETERR, 502], "not-ws": [STA_REQFAIL, 500], "http-alias": [STA_REQFAIL, 500],
        "ws-alias-by-get": [STA_REQFAIL, 500], "fetch": 404,
    }
