"""HTTP/2 to backends: aliases of the gateway's kinds "h2" (TLS, ALPN) and "h2c" (cleartext,
prior knowledge) against real Skitai upstreams with the HTTP/2 plugin, which report the protocol
they were called over (`SERVER_PROTOCOL`); the same calls, balancing and faults as HTTP/1.1."""
import socket

import httpx
import pytest
from gwservers import UpstreamApp

import skitai
from skitai import was
from skitai.backends import AliasError
from skitai.corequest import STA_NETERR, STA_NORMAL, STA_TIMEOUT
from skitai.testing import ServerThread, StartedServers, make_certificates, wait_for
from skitai_gateway import PROTO_H2, PROTO_H2C
from skitai_http2 import plugin as http2_plugin


def ask(server, path="/", timeout=20):
    response = httpx.get(server.url(path), timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def h2_upstream():
    """h2_upstream(name="a", http2=True, **settings) -> a Skitai upstream (an UpstreamApp as
    `.app`) speaking HTTP/2 as well as HTTP/1.1, or HTTP/1.1 only when `http2` is False."""
    def make(http2=True, **settings):
        server = ServerThread(**settings)
        if http2:
            http2_plugin.skitai_register_protocols(protocols=server.kernel.protocols)
        return server

    def start(name="a", **settings):
        app = UpstreamApp(name)
        server = servers(app, **settings)
        server.app = app
        return server

    servers = StartedServers(make)
    yield start
    servers.stop()


@pytest.fixture
def certificates(tmp_path):
    return make_certificates(str(tmp_path))


def test_h2c_members_are_called_over_http2_with_prior_knowledge(h2_upstream, serve):
    a, b = h2_upstream("a"), h2_upstream("b")

    def call():
        tasks = [was.post("@api/echo", {"n": n}) for n in range(8)]   # concurrent: streams of one connection
        results = [task.dispatch(timeout=10) for task in tasks]
        failed = [repr(result.expt) for result in results if not result.ok]
        assert not failed, failed
        answers = [result.data for result in results]
        mapped = was.get.map("@api/echo", {"q": "x"}).dispatch(timeout=10)
        return {"answers": answers, "mapped": [(r.status, r.data["member"], r.data["protocol"]) for r in mapped]}

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@api", PROTO_H2C, [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    answer = ask(gateway)
    assert {item["protocol"] for item in answer["answers"]} == {"HTTP/2.0"}
    assert [item["body"] for item in answer["answers"]] == [f'{{"n": {n}}}' for n in range(8)]
    assert {item["member"] for item in answer["answers"]} == {"a", "b"}
    assert answer["mapped"] == [[STA_NORMAL, "a", "HTTP/2.0"], [STA_NORMAL, "b", "HTTP/2.0"]]
    assert a.app.calls + b.app.calls == 10
    # pooled: the eight concurrent calls and the map went over one connection per member
    assert len(set(a.app.ports)) == 1 and len(set(b.app.ports)) == 1


def test_h2_members_negotiate_http2_through_alpn_and_others_keep_http1(h2_upstream, serve, certificates):
    tls = {"ssl_certfile": certificates.cert, "ssl_keyfile": certificates.key}
    modern, plain = h2_upstream("modern", **tls), h2_upstream("plain", http2=False, **tls)

    def call():
        return [was.get(f"@{name}/echo").fetch(timeout=10)["protocol"] for name in ("modern", "plain")]

    gateway = serve({"/": call}, backend_ca=certificates.ca)
    gateway.kernel.aliases.add("@modern", PROTO_H2, f"localhost:{modern.port}")
    gateway.kernel.aliases.add("@plain", PROTO_H2, f"localhost:{plain.port}")
    assert ask(gateway) == ["HTTP/2.0", "HTTP/1.1"]

    def untrusted():
        result = was.get("@modern/echo").dispatch(timeout=10)
        return [result.status, result.status_code, "CERTIFICATE_VERIFY_FAILED" in str(result.expt)]

    stranger = serve({"/": untrusted})
    stranger.kernel.aliases.add("@modern", PROTO_H2, f"localhost:{modern.port}")
    assert ask(stranger) == [STA_NETERR, 502, True]


def test_h2c_upload_auth_text_and_status_answers(h2_upstream, serve):
    up = h2_upstream()

    def call():
        upload = was.upload("@api/echo", {"title": "Mozart", "photo": ("m.jpg", b"\xff\xd8", "image/jpeg")}).fetch()
        text = was.get("@api/text").fetch()
        missing = was.get("@api/status/404").dispatch()
        return {"upload": [upload["content_type"].split(";")[0], "Mozart" in upload["body"], upload["user"]],
                "text": text, "missing": [missing.status, missing.status_code]}

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@api", PROTO_H2C, f"hans:secret@127.0.0.1:{up.port}")
    assert ask(gateway) == {"upload": ["multipart/form-data", True, "hans:secret"], "text": "héllo",
                            "missing": [STA_NORMAL, 404]}


def test_h2c_lb_fails_over_from_a_refusing_member(h2_upstream, serve):
    up = h2_upstream("alive")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]

    def call():
        return [was.get.lb("@api/echo").fetch(timeout=10)["member"] for _ in range(4)]

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@api", PROTO_H2C, [f"127.0.0.1:{dead} 10", f"127.0.0.1:{up.port}"])
    assert ask(gateway) == ["alive"] * 4


def test_h2c_faults_become_502_and_504(h2_upstream, serve):
    http1_only = h2_upstream("old", http2=False)
    slow = h2_upstream("slow")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (by the kernel) and never answers

    def call():
        old = was.get("@old/echo").dispatch(timeout=10)
        late = was.get("@slow/slow", timeout=0.05).dispatch()
        mute = was.get("@silent/echo", timeout=0.5).dispatch()
        return [[old.status, old.status_code], [late.status, late.status_code], [mute.status, mute.status_code]]

    gateway = serve({"/": call})
    gateway.kernel.aliases.add("@old", PROTO_H2C, f"127.0.0.1:{http1_only.port}")
    gateway.kernel.aliases.add("@slow", PROTO_H2C, f"127.0.0.1:{slow.port}")
    gateway.kernel.aliases.add("@silent", PROTO_H2C, f"127.0.0.1:{silent.getsockname()[1]}")
    try:
        assert ask(gateway) == [[STA_NETERR, 502], [STA_TIMEOUT, 504], [STA_TIMEOUT, 504]]
    finally:
        silent.close()


def test_h2c_alias_refuses_ssl_and_paths(serve):
    gateway = serve({"/": lambda: None})
    with pytest.raises(AliasError, match="h2c is cleartext"):
        gateway.kernel.aliases.add("@api", PROTO_H2C, "127.0.0.1:1", ssl=True)
    with pytest.raises(AliasError, match="put the path in the call"):
        gateway.kernel.aliases.add("@api", PROTO_H2, "127.0.0.1:1/v1")
    assert skitai.PROTO_HTTPS == "https" and (PROTO_H2, PROTO_H2C) == ("h2", "h2c")


def test_the_http2_clients_are_closed_when_the_server_stops(h2_upstream, serve):
    up = h2_upstream()
    gateway = serve({"/": lambda: was.get("@api/echo").fetch(timeout=10)["protocol"]})
    gateway.kernel.aliases.add("@api", PROTO_H2C, f"127.0.0.1:{up.port}")
    assert ask(gateway) == "HTTP/2.0"
    clients = list(gateway.server.was.get.upstreams.http2._clients.values())
    assert len(clients) == 1 and up.server.connections
    gateway.__exit__(None, None, None)
    assert clients[0].is_closed
    wait_for(lambda: not up.server.connections, timeout=10)
