"""Every mounted handler works per stream: static files (Range, conditionals, HEAD), WSGI apps
streaming past the flow-control window, large uploads streamed to the app, concurrent streams,
request trailers."""
import asyncio
import email.utils
import hashlib
import os
import threading

import h2.events
import h2.settings
import httpx
import pytest
from apps import APP, PIECE, PIECES
from h2peer import Client

import skitai


@pytest.fixture
def static_dir(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(300 * 1024))
    (root / "small.txt").write_bytes(b"hello static\n")
    return root


def client():
    return httpx.Client(http1=False, http2=True, timeout=10)


def test_static_file_whole_range_and_conditional(serve, static_dir):
    server = serve(("/", APP), ("/static", str(static_dir)))
    data = (static_dir / "big.bin").read_bytes()
    with client() as http:
        whole = http.get(server.url("/static/big.bin"))
        assert whole.http_version == "HTTP/2" and whole.content == data
        part = http.get(server.url("/static/big.bin"), headers={"Range": "bytes=1000-200999"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 1000-200999/{len(data)}"
        assert part.content == data[1000:201000]
        multi = http.get(server.url("/static/big.bin"), headers={"Range": "bytes=0-9,-10"})
        assert multi.status_code == 206
        assert multi.headers["content-type"].startswith("multipart/byteranges")
        assert data[:10] in multi.content and data[-10:] in multi.content
        cached = http.get(server.url("/static/big.bin"), headers={"If-None-Match": whole.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b""
        unsatisfiable = http.get(server.url("/static/big.bin"), headers={"Range": "bytes=999999-"})
        assert unsatisfiable.status_code == 416


def test_static_files_come_from_the_cache_http1_filled(serve, static_dir):
    """One per-worker cache serves both protocols: a file cached by an HTTP/1.1 request and
    changed on disk since is answered over HTTP/2 as cached, whole (length, ETag, bytes, ranges)."""
    server = serve(("/", APP), ("/static", str(static_dir)), static_cache_valid=60)
    first = httpx.get(server.url("/static/small.txt"), timeout=10)
    assert first.http_version == "HTTP/1.1" and first.content == b"hello static\n"
    (static_dir / "small.txt").write_bytes(b"changed on the disk since\n")
    with client() as http:
        again = http.get(server.url("/static/small.txt"))
        assert again.http_version == "HTTP/2" and again.content == b"hello static\n"
        assert again.headers["etag"] == first.headers["etag"] and again.headers["content-length"] == "13"
        head = http.head(server.url("/static/small.txt"))
        assert head.headers["content-length"] == "13" and head.content == b""
        part = http.get(server.url("/static/small.txt"), headers={"Range": "bytes=0-4"})
        assert part.status_code == 206 and part.content == b"hello"
        cached = http.get(server.url("/static/small.txt"), headers={"If-None-Match": first.headers["etag"]})
        assert cached.status_code == 304 and cached.content == b""


def own_date_and_server(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                              ("Server", "myapp")])
    return [b"mine"]


def test_every_response_has_date_and_server(serve, static_dir):
    """RFC 9110 6.6.1: Date in every 2xx-4xx answer (and Server), as over HTTP/1.1; an app's own
    Date and Server are sent instead, once."""
    server = serve(("/", APP), ("/static", str(static_dir)), ("/own", own_date_and_server))
    with client() as http:
        whole = http.get(server.url("/static/big.bin"))
        responses = [http.get(server.url("/")), whole, http.head(server.url("/static/small.txt")),
                     http.get(server.url("/static/big.bin"), headers={"If-None-Match": whole.headers["etag"]}),
                     http.get(server.url("/static/missing.txt"))]
        assert [response.status_code for response in responses] == [200, 200, 200, 304, 404]
        for response in responses:
            assert response.http_version == "HTTP/2"
            assert len(response.headers.get_list("date")) == 1
            assert email.utils.parsedate_to_datetime(response.headers["date"]).tzinfo is not None
            assert response.headers.get_list("server") == [f"skitai/{skitai.__version__}"]
        own = http.get(server.url("/own/"))
        assert own.headers.get_list("date") == ["Sun, 06 Nov 1994 08:49:37 GMT"]
        assert own.headers.get_list("server") == ["myapp"]


def test_head_requests(serve, static_dir):
    server = serve(("/", APP), ("/static", str(static_dir)))
    with client() as http:
        static = http.head(server.url("/static/big.bin"))
        assert static.status_code == 200
        assert static.headers["content-length"] == str(300 * 1024)
        assert static.content == b""
        app = http.head(server.url("/"))
        assert app.status_code == 200 and app.content == b""
        assert http.get(server.url("/static/small.txt")).content == b"hello static\n"


def test_streamed_response_beyond_the_flow_control_window(serve):
    """The client credits data only as it reads; h2 would fail the connection if the server
    sent a byte beyond the window, so receiving all 4 MiB proves both streaming and flow control."""
    server = serve(APP)
    peer = Client(server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384})
    try:
        headers, body = peer.response(peer.request("/stream"))
        assert headers[":status"] == "200"
        assert body == PIECE * PIECES
    finally:
        peer.close()


def test_large_upload_is_streamed_to_the_app(serve):
    """32 MiB through a 256 KiB stream window: it only gets through if the app's reads give the
    window back as it consumes."""
    server = serve(APP)
    chunk = os.urandom(1024 * 1024)
    digest = hashlib.sha256(chunk * 32).hexdigest()

    def body():
        for _ in range(32):
            yield chunk

    with client() as http:
        response = http.post(server.url("/echo"), content=body())
    assert response.text == f"{32 * len(chunk)} {digest} HTTP/2.0"


def test_unread_upload_holds_the_client_back(serve):
    """While the app does not read, the stream's window stays shut: the client cannot push more
    than the window into the server."""
    started, release = threading.Event(), threading.Event()

    def slow_reader(environ, start_response):
        started.set()
        release.wait(10)
        size = len(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(size).encode()]

    server = serve(slow_reader)
    peer = Client(server.port)
    try:
        stream_id = peer.conn.get_next_available_stream_id()
        peer.conn.send_headers(stream_id, [(":method", "POST"), (":path", "/"), (":scheme", "http"),
                                           (":authority", "x")])
        peer.flush()
        peer.until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        assert started.wait(10)
        sent = 0
        while peer.conn.local_flow_control_window(stream_id) > 0:
            size = min(peer.conn.local_flow_control_window(stream_id), 16384)
            peer.conn.send_data(stream_id, b"u" * size)
            sent += size
            peer.flush()
        assert sent <= 256 * 1024 + 65535  # the stream window, or the default before SETTINGS
        release.set()
        remaining = 512 * 1024
        while remaining:
            window = peer.conn.local_flow_control_window(stream_id)
            if window == 0:
                peer.until(lambda e: isinstance(e, h2.events.WindowUpdated))
                continue
            size = min(window, 16384, remaining)
            peer.conn.send_data(stream_id, b"u" * size, end_stream=size == remaining)
            remaining -= size
            sent += size
            peer.flush()
        headers, body = peer.response(stream_id)
        assert body == str(sent).encode()
    finally:
        release.set()
        peer.close()


def test_concurrent_streams_on_one_connection(serve):
    """Four requests that only finish together (a barrier in the app) on one connection: the
    streams run in the thread pool at the same time."""
    barrier = threading.Barrier(4, timeout=10)

    def together(environ, start_response):
        barrier.wait()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    server = serve(together, threads=4)

    async def main():
        async with httpx.AsyncClient(http1=False, http2=True, timeout=15) as http:
            return await asyncio.gather(*(http.get(server.url(f"/{n}")) for n in range(4)))

    responses = asyncio.run(main())
    assert sorted(r.text for r in responses) == ["/0", "/1", "/2", "/3"]
    assert all(r.http_version == "HTTP/2" for r in responses)
    assert len(server.server.connections) <= 1


def test_many_streams_interleaved(serve):
    server = serve(APP)

    async def main():
        async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as http:
            return await asyncio.gather(*(http.get(server.url("/stream" if n % 10 == 0 else "/"))
                                          for n in range(60)))

    responses = asyncio.run(main())
    assert [len(r.content) for r in responses[::10]] == [len(PIECE) * PIECES] * 6
    assert all(r.status_code == 200 for r in responses)


def test_request_trailers_end_the_body_and_are_not_headers(serve):
    def show(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body + b" " + environ.get("HTTP_X_CHECKSUM", "none").encode()]

    server = serve(show)
    peer = Client(server.port)
    try:
        stream_id = peer.conn.get_next_available_stream_id()
        peer.conn.send_headers(stream_id, [(":method", "POST"), (":path", "/"), (":scheme", "http"),
                                           (":authority", "x"), ("te", "trailers")])
        peer.conn.send_data(stream_id, b"payload")
        peer.conn.send_headers(stream_id, [("x-checksum", "abc")], end_stream=True)
        peer.flush()
        headers, body = peer.response(stream_id)
        assert headers[":status"] == "200"
        assert body == b"payload none"
    finally:
        peer.close()


def read_declared(environ, start_response):
    """Reads the body as WSGI says, by CONTENT_LENGTH: it answers before the END_STREAM."""
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"got " + body]


def test_an_answer_before_end_stream_leaves_a_body_received_in_full_unreset(serve):
    """The body's declared bytes have all come, its END_STREAM not yet, when the app answers:
    the stream is not reset, so a client that sends END_STREAM in a frame of its own after the
    data (httpx does) may still send it, and gets its answer (RFC 9113 8.1 allows the reset, but
    httpx then fails the request as a LocalProtocolError)."""
    server = serve(read_declared)
    peer = Client(server.port)
    try:
        stream_id = peer.conn.get_next_available_stream_id()
        peer.conn.send_headers(stream_id, [(":method", "POST"), (":path", "/"), (":scheme", "http"),
                                           (":authority", "x"), ("content-length", "5")])
        peer.conn.send_data(stream_id, b"hello")
        peer.flush()
        headers, body = peer.response(stream_id)
        assert headers[":status"] == "200" and body == b"got hello" and "reset" not in headers
        peer.conn.ping(b"12345678")  # its ACK comes after anything the server sent before it
        peer.flush()
        seen = peer.until(lambda e: isinstance(e, h2.events.PingAckReceived))
        assert not [e for e in seen if isinstance(e, h2.events.StreamReset)]
        peer.conn.end_stream(stream_id)  # h2 raises StreamClosedError on a reset stream
        peer.flush()
        next_id = peer.request("/", "POST", b"again", extra=[("content-length", "5")])
        headers, body = peer.response(next_id)
        assert headers[":status"] == "200" and body == b"got again"  # the connection goes on
    finally:
        peer.close()


@pytest.mark.parametrize("declared", [True, False])
def test_upload_over_the_limit_is_refused(serve, declared):
    """413 as soon as the declared length, or the data received, passes the limit; the stream is
    then reset with NO_ERROR so the client stops sending (RFC 9113 8.1)."""
    server = serve(APP, max_upload_size=100000)
    peer = Client(server.port)
    try:
        stream_id = peer.conn.get_next_available_stream_id()
        extra = [("content-length", "200000")] if declared else []
        peer.conn.send_headers(stream_id, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"),
                                           (":authority", "x"), *extra])
        peer.flush()
        peer.until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        for _ in range(10):  # 160 KB, beyond the limit and within the 256 KiB window
            if peer.conn.streams[stream_id].closed:
                break
            peer.conn.send_data(stream_id, b"x" * 16000)
            peer.flush()
        headers, body = peer.response(stream_id)
        assert headers[":status"] == "413"
        assert body.startswith(b"413 Request Entity Too Large") or body.startswith(b"413 Content Too Large")
        peer.conn.send_headers(peer.conn.get_next_available_stream_id(), [
            (":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")], end_stream=True)
        peer.flush()
        headers, _ = peer.response(stream_id + 2)
        assert headers[":status"] == "200"  # the connection goes on
    finally:
        peer.close()


def test_loop_thread_apps_get_the_whole_body_first(serve):
    """threads=0: the app runs on the loop thread, so the body is spooled and the app is
    dispatched once the stream's END_STREAM arrives."""
    server = serve(APP, threads=0)
    body = os.urandom(3 * 1024 * 1024)
    with client() as http:
        response = http.post(server.url("/echo"), content=body)
    assert response.text == f"{len(body)} {hashlib.sha256(body).hexdigest()} HTTP/2.0"


def test_body_that_never_comes_gets_408(serve):
    server = serve(APP, threads=0, request_timeout=1)
    peer = Client(server.port)
    try:
        stream_id = peer.conn.get_next_available_stream_id()
        peer.conn.send_headers(stream_id, [(":method", "POST"), (":path", "/echo"), (":scheme", "http"),
                                           (":authority", "x")])
        peer.conn.send_data(stream_id, b"partial")
        peer.flush()
        headers, body = peer.response(stream_id)
        assert headers[":status"] == "408"
    finally:
        peer.close()
