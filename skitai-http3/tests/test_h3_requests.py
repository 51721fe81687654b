"""HTTP/3 requests through the mount table, with aioquic's client (skitai_http3.testing):
WSGI apps, bodies streamed both ways, trailers, errors, limits."""
import hashlib

import pytest
from h3apps import APP, PIECE, PIECES, TRAILERS
from h3server import h3_server

from skitai.testing import RelayHandler, StartedServers
from skitai_http3.testing import StreamResetError, h3_connect, run


def session(server, certs, requests):
    """Run `requests(client)` on one HTTP/3 connection to `server`."""
    async def go():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            return await requests(client)
    return run(go)


def test_a_wsgi_app_answers_over_http3(serve, certs):
    server = serve(APP)
    response = session(server, certs, lambda client: client.request("GET", "/"))
    assert response.status == 200
    assert response.body == b"HTTP/3.0 GET localhost https"
    assert response.header("server").startswith("skitai/") and response.header("date")
    assert response.header("content-length") == str(len(response.body))
    assert response.header("alt-svc") is None  # advertised over TCP only


def test_many_concurrent_requests_on_one_connection(serve, certs):
    import asyncio

    server = serve(APP)

    async def many(client):
        return await asyncio.gather(*(client.request("GET", "/") for _ in range(50)))
    responses = session(server, certs, many)
    assert [response.status for response in responses] == [200] * 50


def test_a_streamed_response_arrives_whole(serve, certs):
    server = serve(APP)
    response = session(server, certs, lambda client: client.request("GET", "/stream"))
    assert response.status == 200 and response.body == PIECE * PIECES


def test_a_streamed_upload_reaches_the_app_whole(serve, certs):
    server = serve(APP)
    data = bytes(range(256)) * 4096 * 4  # 4 MiB

    async def pieces():
        for start in range(0, len(data), 100_000):
            yield data[start:start + 100_000]
    response = session(server, certs, lambda client: client.request("POST", "/echo", body=pieces()))
    assert response.body == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


def test_request_trailers_are_accepted_and_response_trailers_end_the_stream(serve, certs):
    server = serve(APP)

    async def both(client):
        upload = await client.request("POST", "/echo", body=b"abc", trailers=[("x-sum", "1")])
        return upload, await client.request("GET", "/trailers")
    upload, response = session(server, certs, both)
    assert upload.body == f"3 {hashlib.sha256(b'abc').hexdigest()}".encode()
    assert response.body == b"one two" and response.trailers == TRAILERS


def test_request_trailers_reach_a_relaying_handler_once_the_body_ended(certs):
    """`body.trailers` over HTTP/3, as over HTTP/1.1 and HTTP/2: the request's trailing HEADERS,
    complete once `read_async` returned b"" (echoed as the response's trailers by the relay)."""
    handler = RelayHandler()
    servers = StartedServers(lambda **settings: h3_server(ssl_certfile=certs.cert, ssl_keyfile=certs.key,
                                                          **settings), handlers=(handler,))
    try:
        server = servers(APP)

        async def both(client):
            relayed = await client.request("POST", "/relay", body=b"hello",
                                           trailers=[("x-checksum", "abc"), ("server-timing", "db;dur=5")])
            return relayed, await client.request("POST", "/relay", body=b"hi")
        relayed, plain = session(server, certs, both)
    finally:
        servers.stop()
    assert (relayed.status, relayed.body, plain.body) == (200, b"hello", b"hi")
    assert handler.trailers == [[("x-checksum", "abc"), ("server-timing", "db;dur=5")], []]
    assert relayed.trailers == [("x-checksum", "abc"), ("server-timing", "db;dur=5")]


def test_forbidden_request_trailers_reset_the_stream(serve, certs):
    server = serve(APP)

    async def forbidden(client):
        with pytest.raises(StreamResetError) as error:
            await client.request("POST", "/echo", body=b"abc", trailers=[("content-length", "3")], timeout=5)
        assert error.value.error_code == 0x10E  # H3_MESSAGE_ERROR
        return await client.request("GET", "/")
    assert session(server, certs, forbidden).status == 200  # the connection goes on


def test_an_app_failing_mid_body_resets_its_stream_only(serve, certs):
    server = serve(APP)

    async def failing(client):
        with pytest.raises(StreamResetError):
            await client.request("GET", "/failing", timeout=5)
        return await client.request("GET", "/")
    assert session(server, certs, failing).status == 200


def test_an_upload_over_the_limit_is_answered_413(serve, certs):
    server = serve(APP, max_upload_size=1000)
    response = session(server, certs, lambda client: client.request(
        "POST", "/echo", body=b"x" * 5000, headers=[("content-length", "5000")]))
    assert response.status == 413


def test_an_unknown_path_is_404(serve, certs):
    # (HEAD is not tested with this client: aioquic's H3Connection does not know a response
    # answers a HEAD and refuses its Content-Length without a body as a message error.)
    server = serve(APP)
    assert session(server, certs, lambda client: client.request("GET", "/nope")).status == 404


def test_was_push_promises_and_serves_over_http3(serve, certs, tmp_path):
    """`was.push(uri)` over HTTP/3: a PUSH_PROMISE on the request's stream, the pushed GET served
    through the mount table (a static file here) on a push stream; cross-origin refused."""
    from skitai import was

    (tmp_path / "style.css").write_bytes(b"body { color: red }")

    def page(environ, start_response):
        results = [was.push("/static/style.css"), was.push("https://elsewhere.example/x.css")]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(results).encode()]
    server = serve(("/", page), ("/static", str(tmp_path)))

    async def pushed(client):
        response = await client.request("GET", "/")
        import asyncio
        for _ in range(100):
            if client.pushed and client.pushed[0].received == 19:
                break
            await asyncio.sleep(0.02)
        return response, client.promises, client.pushed
    response, promises, pushed_responses = session(server, certs, pushed)
    assert response.body == b"[True, False]"
    assert list(promises) == [0] and dict(promises[0])[":path"] == "/static/style.css"
    assert pushed_responses[0].status == 200 and pushed_responses[0].body == b"body { color: red }"


@pytest.mark.parametrize("method, path, body", [("GET", "/", b""), ("GET", "/stream", b""),
                                                ("POST", "/echo", b"x" * 1000)])
def test_the_usual_paths_keep_an_exchanges_names_few_and_set_at_init(serve, certs, monkeypatch, method, path, body):
    """As for HTTP/2 (skitai-http2's test_exchange_layout.py): CPython shares an attribute
    layout among at most 30 names, set at `__init__`; past it every exchange gets a dict."""
    from skitai_http3.exchange import H3Exchange

    made = []
    init = H3Exchange.__init__

    def recording_init(self, *args):
        init(self, *args)
        made.append((self, set(vars(self))))

    monkeypatch.setattr(H3Exchange, "__init__", recording_init)
    server = serve(APP)
    response = session(server, certs, lambda client: client.request(method, path, body=body))
    assert response.status == 200
    (exchange, at_init), = made
    assert exchange.finished and set(vars(exchange)) == at_init and len(at_init) <= 30
