"""Each protection against an abusive HTTP/2 peer, over a real socket: the server answers with
GOAWAY (or a stream reset) and keeps serving everyone else."""
import threading

import h2.events
import h2.settings
import httpx
from apps import APP
from h2.errors import ErrorCodes
from h2peer import Client, RawPeer
from hyperframe.frame import RstStreamFrame, SettingsFrame


def still_serving(server):
    with httpx.Client(http1=False, http2=True, timeout=10) as http:
        assert http.get(server.url("/")).status_code == 200


def test_rapid_reset_is_stopped(serve):
    """CVE-2023-44487: open and reset streams at once, over and over."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        frames = []
        for n in range(1000):
            stream_id = 2 * n + 1
            frames += [peer.request(stream_id, end_stream=False), peer.reset(stream_id)]
        peer.send(*frames)
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        assert b"rapid reset" in goaway.additional_data
    finally:
        peer.close()
    still_serving(server)


def test_ping_flood_is_stopped(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.send(*(peer.ping(n) for n in range(3000)))
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        peer.close()
    still_serving(server)


def test_settings_flood_is_stopped(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.send(*(SettingsFrame(0, settings={h2.settings.SettingCodes.ENABLE_PUSH: 0}) for _ in range(3000)))
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        peer.close()


def test_a_few_pings_are_answered(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.send(*(peer.ping(n) for n in range(20)))
        acks = []
        for frame in peer.frames(timeout=5):
            if type(frame).__name__ == "PingFrame" and "ACK" in frame.flags:
                acks.append(frame)
                if len(acks) == 20:
                    break
        assert len(acks) == 20
    finally:
        peer.close()


def test_oversized_header_list_is_refused(serve):
    """100 KB of header fields, split into frames that each respect the frame size."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        block = peer.request(1, extra=[("x-big", "a" * 100_000)]).data
        pieces = [block[i:i + 16000] for i in range(0, len(block), 16000)]
        first = peer.headers(1, [], end_stream=True, end_headers=False)
        first.data = pieces[0]
        rest = [peer.continuation(1, piece) for piece in pieces[1:]]
        rest[-1].flags.add("END_HEADERS")
        peer.send(first, *rest)
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        peer.close()
    still_serving(server)


def test_hpack_bomb_is_refused(serve):
    """A 4 KB field indexed once, then referenced 60 times with one byte each: a few hundred
    bytes on the wire that would decode to 240 KB."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        bomb = [("x-bomb", "b" * 4000)] * 60
        frame = peer.request(1, extra=bomb)
        assert len(frame.data) < 4500
        peer.send(frame)
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        peer.close()
    still_serving(server)


def test_continuation_flood_is_refused(serve):
    """A header block that never ends: CONTINUATION frames without END_HEADERS."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.send(peer.headers(1, [(":method", "GET")], end_stream=True, end_headers=False),
                  *(peer.continuation(1, b"\x00" * 1000) for _ in range(200)))
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code != ErrorCodes.NO_ERROR
    finally:
        peer.close()
    still_serving(server)


def test_too_many_concurrent_streams(serve):
    """More open streams than SETTINGS_MAX_CONCURRENT_STREAMS (100) allows."""
    release = threading.Event()

    def waits(environ, start_response):
        release.wait(10)
        start_response("200 OK", [])
        return [b"ok"]

    server = serve(waits)
    peer = RawPeer(server.port)
    try:
        peer.send(*(peer.request(2 * n + 1, end_stream=False) for n in range(150)))
        goaway = peer.goaway()
        assert goaway is not None and goaway.error_code in (ErrorCodes.PROTOCOL_ERROR,
                                                            ErrorCodes.REFUSED_STREAM)
        assert goaway.last_stream_id <= 2 * 150 + 1
    finally:
        release.set()
        peer.close()


def test_stream_that_stops_reading_is_reset(serve):
    """The client never opens the window of one stream again: after the request timeout that
    stream is reset (its app thread is released), and other streams of the connection go on."""
    server = serve(APP, request_timeout=1)
    peer = Client(server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
    try:
        stuck = peer.request("/stream")
        events = peer.until(lambda e: isinstance(e, h2.events.StreamReset) and e.stream_id == stuck,
                            timeout=15)
        reset = [e for e in events if isinstance(e, h2.events.StreamReset)][-1]
        assert reset.error_code == ErrorCodes.CANCEL
        received = sum(len(e.data) for e in events if isinstance(e, h2.events.DataReceived))
        assert received <= 1024
        headers, body = peer.response(peer.request("/"))
        assert headers[":status"] == "200" and body.startswith(b"HTTP/2.0 GET")
    finally:
        peer.close()


def test_client_reset_stops_the_stream(serve):
    """A client reset while the app streams: the app's next write fails and its iterable is
    closed, the connection goes on."""
    closed = threading.Event()

    class Endless:
        def __iter__(self):
            while True:
                yield b"z" * 65536

        def close(self):
            closed.set()

    def endless(environ, start_response):
        start_response("200 OK", [])
        return Endless()

    server = serve(endless)
    peer = Client(server.port)
    try:
        stream_id = peer.request("/")
        peer.until(lambda e: isinstance(e, h2.events.DataReceived))
        peer.sock.sendall(RstStreamFrame(stream_id, error_code=ErrorCodes.CANCEL).serialize())
        assert closed.wait(10)
    finally:
        peer.close()
