"""`was.get` and its siblings over real sockets: an app in a Skitai server calls upstream Skitai
servers (plain and HTTPS) by absolute URL and by alias; JSON by default, other types by headers;
answers decoded by their Content-Type; pooled keep-alive connections; the result cache."""
import email.parser
import email.policy
import time

import httpx
import pytest

import skitai
from skitai import HTTPError, was
from skitai.corequest import STA_NETERR, STA_NORMAL
from skitai.testing import make_certificates, wait_for
from skitai_gateway import upstreams


def ask(server, path="/", timeout=20):
    response = httpx.get(server.url(path), timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()


def result_fields(result):
    return {"status": result.status, "code": result.status_code, "data": result.data,
            "type": result.get_header("Content-Type")}


def test_get_an_absolute_url_as_json(serve, upstream):
    up = upstream()
    gateway = serve({"/": lambda: result_fields(was.get(up.url("/echo?x=1"), data={"y": "2"}).dispatch())})
    answer = ask(gateway)
    assert answer["status"] == STA_NORMAL and answer["code"] == 200 and answer["type"] == "application/json"
    data = answer["data"]
    assert data["method"] == "GET" and data["path"] == "/echo" and data["accept"] == "application/json"
    assert data["query"] == {"x": ["1"], "y": ["2"]} and data["body"] == ""   # GET data: the query string


@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_data_goes_as_json_by_default(serve, upstream, method):
    up = upstream()
    gateway = serve({"/": lambda: getattr(was, method)(up.url("/echo"), {"user": "Hans Roh"}).fetch()})
    data = ask(gateway)
    assert data["method"] == method.upper() and data["content_type"] == "application/json"
    assert data["body"] == '{"user": "Hans Roh"}'


@pytest.mark.parametrize("method", ["delete", "options"])
def test_other_methods(serve, upstream, method):
    up = upstream()
    gateway = serve({"/": lambda: getattr(was, method)(up.url("/echo"), {"id": 7}).fetch()})
    data = ask(gateway)
    assert data["method"] == method.upper() and data["query"] == {"id": ["7"]}


def test_head_has_no_data(serve, upstream):
    up = upstream()
    gateway = serve({"/": lambda: result_fields(was.head(up.url("/echo")).dispatch())})
    assert ask(gateway) == {"status": STA_NORMAL, "code": 200, "data": None, "type": "application/json"}
    assert up.app.calls == 1


def test_form_and_text_bodies_by_content_type(serve, upstream):
    up = upstream()
    form = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "text/xml")]
    gateway = serve({
        "/form": lambda: was.post(up.url("/echo"), {"a": "1", "b": ["x", "y"]}, headers=form).fetch(),
        "/text": lambda: was.post(up.url("/echo"), "plain words", headers={"Content-Type": "text/plain"}).fetch(),
        "/bytes": lambda: was.put(up.url("/echo"), b"\x00raw").fetch(),
    })
    data = ask(gateway, "/form")
    assert data["content_type"] == "application/x-www-form-urlencoded" and data["accept"] == "text/xml"
    assert data["body"] == "a=1&b=x&b=y"
    data = ask(gateway, "/text")
    assert (data["content_type"], data["body"]) == ("text/plain", "plain words")
    data = ask(gateway, "/bytes")
    assert (data["content_type"], data["body"]) == ("application/octet-stream", "\x00raw")


def test_answers_are_decoded_by_their_content_type(serve, upstream):
    up = upstream()
    gateway = serve({
        "/text": lambda: was.get(up.url("/text")).fetch(),
        "/bytes": lambda: list(was.get(up.url("/bytes")).fetch()),
    })
    assert ask(gateway, "/text") == "héllo"
    assert ask(gateway, "/bytes") == [0, 1, 255]


def test_an_unsuccessful_answer_is_normal_and_fetch_raises_its_code(serve, upstream):
    up = upstream()

    def call():
        result = was.get(up.url("/status/404")).dispatch()
        try:
            result.fetch()
        except HTTPError as error:
            return [result.status, result.status_code, result.data, error.code]

    gateway = serve({"/": call})
    assert ask(gateway) == [STA_NORMAL, 404, {"member": "a"}, 404]


def test_aliases_reach_their_member_with_its_credentials(serve, upstream):
    up = upstream()
    gateway = serve({"/": lambda: was.get("@members/echo").fetch(),
                     "/own": lambda: was.get("@members/echo", auth=("other", "pw")).fetch()})
    gateway.kernel.aliases.add("@members", skitai.PROTO_HTTP, f"us%40r:secret@127.0.0.1:{up.port}")
    data = ask(gateway)
    assert data["path"] == "/echo" and data["user"] == "us@r:secret"
    assert ask(gateway, "/own")["user"] == "other:pw"


@pytest.mark.parametrize("url, cause", [
    ("@nowhere/x", "no alias '@nowhere'"),
    ("ftp://127.0.0.1/x", "ftp://127.0.0.1/x"),
    ("/relative/path", "/relative/path"),
])
def test_a_call_that_cannot_be_made_fails_naming_the_cause(serve, url, cause):
    def call():
        result = was.get(url).dispatch()
        return [result.status, result.status_code, str(result.expt)]

    status, code, message = ask(serve({"/": call}))
    assert (status, code) == (skitai.STA_REQFAIL, 500) and cause in message, message


def test_an_http_member_with_a_path_is_refused_when_declared(serve):
    gateway = serve({})
    with pytest.raises(skitai.backends.AliasError, match="put the path in the call"):
        gateway.kernel.aliases.add("@api", skitai.PROTO_HTTP, "127.0.0.1:80/v1")


def test_connections_are_pooled_and_closed_after_the_backend_keep_alive(serve, upstream):
    up = upstream()
    gateway = serve({"/": lambda: [was.get(up.url("/echo")).fetch()["member"] for _ in range(5)]},
                    backend_keep_alive=0.5)
    assert ask(gateway) == ["a"] * 5
    assert len(set(up.app.ports)) == 1, up.app.ports     # one kept-alive connection
    wait_for(lambda: not up.server.connections, timeout=10)  # closed by the gateway after 0.5 s idle
    ask(gateway)
    assert len(set(up.app.ports)) == 2


def test_many_concurrent_calls_share_a_bounded_pool(serve, upstream, monkeypatch):
    monkeypatch.setattr(upstreams, "MAX_CONNECTIONS_PER_MEMBER", 4)
    up = upstream(threads=32)
    gateway = serve({"/": lambda: was.Tasks([was.get(up.url("/slow")) for _ in range(20)]).fetch()})
    assert ask(gateway) == [{"member": "a"}] * 20
    assert len(set(up.app.ports)) == 4, up.app.ports   # 20 calls over 4 connections, waiting their turn


def test_results_are_cached_on_request(serve, upstream):
    up = upstream()
    gateway = serve({"/": lambda: [was.get(up.url("/echo")).dispatch(cache=60).cached for _ in range(3)],
                     "/post": lambda: [was.post(up.url("/echo"), {"a": n}).dispatch(cache=60).cached
                                       for n in (1, 2, 1)]})
    assert ask(gateway) == [False, True, True] and up.app.calls == 1
    assert ask(gateway, "/post") == [False, False, True] and up.app.calls == 3   # by body too


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_pool_is_closed_when_the_server_stops(serve, upstream, method):
    """Whichever service was used first (they are made together at that use)."""
    up = upstream()
    gateway = serve({"/": lambda: getattr(was, method)(up.url("/echo")).fetch()["member"]})
    assert ask(gateway) == "a"
    session = getattr(gateway.server.was, method).upstreams.session
    assert up.server.connections
    gateway.__exit__(None, None, None)
    assert session.closed
    wait_for(lambda: not up.server.connections, timeout=10)


@pytest.fixture
def certificates(tmp_path):
    return make_certificates(str(tmp_path))


def test_https_backends_are_verified_against_the_backend_ca(serve, upstream, certificates):
    up = upstream(ssl_certfile=certificates.cert, ssl_keyfile=certificates.key)
    assert up.url().startswith("https://")

    def call():
        direct = was.get(up.url("/echo")).fetch()["member"]
        by_alias = was.get("@secure/echo").fetch()["member"]
        return [direct, by_alias]

    trusting = serve({"/": call}, backend_ca=certificates.ca)
    trusting.kernel.aliases.add("@secure", skitai.PROTO_HTTPS, f"localhost:{up.port}")
    assert ask(trusting) == ["a", "a"]

    def untrusted():
        result = was.get(up.url("/echo")).dispatch()
        return [result.status, result.status_code, "CERTIFICATE_VERIFY_FAILED" in str(result.expt)]

    assert ask(serve({"/": untrusted})) == [STA_NETERR, 502, True]


def test_set_backend_ca_and_keep_alive_settings(tmp_path, monkeypatch):
    from skitai import api

    monkeypatch.setattr(api, "_kernel", None)
    skitai.set_backend_keep_alive(120)
    skitai.set_backend_ca("/etc/private-ca.pem")
    config = api.get_kernel().config
    assert (config.backend_keep_alive, config.backend_ca) == (120.0, "/etc/private-ca.pem")
    with pytest.raises(ValueError):
        skitai.set_backend_keep_alive(0)
    time.sleep(0)


def multipart_message(echoed):
    """The multipart body an upstream echoed, parsed by the standard library."""
    raw = f"Content-Type: {echoed['content_type']}\r\n\r\n".encode() + echoed["body"].encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.get_content_type() == "multipart/form-data"
    return message


def multipart_parts(echoed):
    """{name: (filename, content type, bytes)} of each part."""
    return {part.get_param("name", header="content-disposition"):
            (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in multipart_message(echoed).iter_parts()}


def test_upload_sends_fields_and_files_as_multipart(serve, upstream, tmp_path):
    up = upstream()
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"line 1\nline 2\n")

    def call():
        with open(notes, "rb") as file:
            return was.upload(up.url("/echo"), {
                "title": "Mozart", "year": 1756, "notes": file, "raw": b"\x00\x01",
                "picture": ("pic.png", b"\x89PNG", "image/png"),
            }).fetch()

    echoed = ask(serve({"/": call}))
    assert echoed["method"] == "POST" and echoed["accept"] == "application/json"
    parts = multipart_parts(echoed)
    assert parts["title"][0] is None and parts["title"][2] == b"Mozart" and parts["year"][2] == b"1756"
    assert parts["notes"] == ("notes.txt", "application/octet-stream", b"line 1\nline 2\n")
    assert parts["raw"] == ("raw", "application/octet-stream", b"\x00\x01")
    assert parts["picture"] == ("pic.png", "image/png", b"\x89PNG")


def test_an_upload_of_fields_alone_is_still_multipart(serve, upstream):
    up = upstream()
    echoed = ask(serve({"/": lambda: was.upload(up.url("/echo"), [("a", "1"), ("a", "2")]).fetch()}))
    assert [part.get_payload(decode=True) for part in multipart_message(echoed).iter_parts()] == [b"1", b"2"]
