"""Each protection against an abusive HTTP/2 peer, over a real socket: the server answers with
GOAWAY (or a stream reset) and keeps serving everyone else."""
import threading

import apps
import h2.events
import h2.settings
import httpx
from apps import APP
from h2.errors import ErrorCodes
from h2peer import Client, RawPeer
from hyperframe.frame import (
    DataFrame,
    ExtensionFrame,
    GoAwayFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)


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


def calm_goaway(peer, *frames):
    """Send `frames`; the GOAWAY that answers them, which must be ENHANCE_YOUR_CALM."""
    peer.send(*frames)
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM, goaway
    return goaway


def served_one(peer, stream_id=1, path="/"):
    """A complete request and response on the raw peer, so `stream_id` is a closed stream."""
    peer.send(peer.request(stream_id, path))
    for frame in peer.frames():
        if stream_id == frame.stream_id and "END_STREAM" in frame.flags:
            return
    raise AssertionError("no complete response")


def test_window_update_flood_is_stopped(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        goaway = calm_goaway(peer, *(WindowUpdateFrame(0, window_increment=1) for _ in range(3000)))
        assert b"WINDOW_UPDATE" in goaway.additional_data
    finally:
        peer.close()
    still_serving(server)


def test_window_update_flood_on_a_closed_stream_is_stopped(serve):
    """h2 drops a WINDOW_UPDATE for a closed stream without an event: still counted."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        served_one(peer)
        goaway = calm_goaway(peer, *(WindowUpdateFrame(1, window_increment=1) for _ in range(3000)))
        assert b"WINDOW_UPDATE" in goaway.additional_data
    finally:
        peer.close()


def test_priority_flood_is_stopped(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        goaway = calm_goaway(peer, *(PriorityFrame(2 * n + 1, depends_on=0, stream_weight=15) for n in range(3000)))
        assert b"PRIORITY" in goaway.additional_data
    finally:
        peer.close()
    still_serving(server)


def test_unknown_frame_flood_is_stopped(serve):
    """Frames of an unknown type must be ignored (RFC 9113 4.1), which makes them free to send."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        calm_goaway(peer, *(ExtensionFrame(type=0x20, stream_id=0) for _ in range(3000)))
    finally:
        peer.close()


def test_empty_data_flood_is_stopped(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        goaway = calm_goaway(peer, peer.request(1, "/echo", end_stream=False),
                             *(DataFrame(1, b"") for _ in range(1000)))
        assert b"empty DATA" in goaway.additional_data
    finally:
        peer.close()
    still_serving(server)


def test_empty_data_flood_on_a_reset_stream_is_stopped(serve):
    """h2 answers each DATA frame on a stream reset a moment ago with RST_STREAM: without a
    budget that is one frame out for nine bytes in, forever."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.send(peer.request(1, "/echo", end_stream=False), peer.reset(1))
        calm_goaway(peer, *(DataFrame(1, b"") for _ in range(1000)))
    finally:
        peer.close()


def test_padding_only_data_flood_is_stopped(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        padded = []
        for _ in range(1000):
            frame = DataFrame(1, b"", pad_length=10)
            frame.flags.add("PADDED")
            padded.append(frame)
        calm_goaway(peer, peer.request(1, "/echo", end_stream=False), *padded)
    finally:
        peer.close()


def test_empty_headers_flood_is_stopped(serve):
    """Zero-length header blocks, each in a HEADERS frame followed by zero-length CONTINUATIONs."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        frames = []
        for n in range(300):
            frames.append(peer.headers(2 * n + 1, [], end_stream=True, end_headers=False))
            frames += [peer.continuation(2 * n + 1, b"") for _ in range(3)]
            frames[-1].flags.add("END_HEADERS")
        goaway = calm_goaway(peer, *frames)
        assert b"empty HEADERS" in goaway.additional_data
    finally:
        peer.close()
    still_serving(server)


def test_malformed_request_flood_is_stopped(serve):
    """CVE-2019-9516: requests with a zero-length header name, each answered with a reset."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        # in batches answered before the next, or h2 counts them all as open streams at once
        goaway, stream_id = None, 1
        for _ in range(20):
            batch = [peer.request(stream_id + 2 * n, extra=[("", "")]) for n in range(50)]
            stream_id += 100
            peer.send(*batch)
            resets = 0
            for frame in peer.frames():
                if isinstance(frame, GoAwayFrame):
                    goaway = frame
                    break
                resets += isinstance(frame, RstStreamFrame)
                if resets == 50:
                    break
            if goaway is not None:
                break
        assert goaway is not None and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        assert b"malformed" in goaway.additional_data
    finally:
        peer.close()
    still_serving(server)


def test_a_few_malformed_requests_are_only_reset(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.send(*(peer.request(2 * n + 1, extra=[("", "")]) for n in range(10)), peer.request(21))
        resets = 0
        for frame in peer.frames(timeout=5):
            assert not isinstance(frame, GoAwayFrame)
            if isinstance(frame, RstStreamFrame):
                assert frame.error_code == ErrorCodes.PROTOCOL_ERROR
                resets += 1
            if frame.stream_id == 21 and "END_STREAM" in frame.flags:
                break
        assert resets == 10
    finally:
        peer.close()


def test_window_updates_for_every_data_frame_are_no_flood(serve):
    """A client that credits every DATA frame at once, stream and connection, as some do:
    24 MiB in 16 KiB frames is 3072 WINDOW_UPDATEs, all earned."""
    big = apps.PIECE * 384

    def download(environ, start_response):
        start_response("200 OK", [])
        return [big]

    server = serve(download)
    peer = Client(server.port)
    try:
        stream_id = peer.request("/")
        received = 0
        while True:
            events = peer.until(lambda e: isinstance(e, (h2.events.DataReceived, h2.events.StreamEnded,
                                                          h2.events.ConnectionTerminated)))
            ended = any(isinstance(event, h2.events.StreamEnded) for event in events)
            for event in events:
                assert not isinstance(event, (h2.events.ConnectionTerminated, h2.events.StreamReset)), event
                if isinstance(event, h2.events.DataReceived):
                    received += len(event.data)
                    peer.conn.increment_flow_control_window(event.flow_controlled_length)
                    if not ended:
                        peer.conn.increment_flow_control_window(event.flow_controlled_length, stream_id)
            peer.flush()
            if ended:
                break
        assert received == len(big)
    finally:
        peer.close()


def test_a_frame_header_beyond_the_max_frame_size_ends_the_connection_at_once(serve):
    """RFC 9113 4.2: FRAME_SIZE_ERROR as soon as the header announces too long a frame, rather
    than buffering up to 16 MiB while waiting for the frame to arrive."""
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.sock.sendall(b"\xff\xff\xff\x00\x00\x00\x00\x00\x01" + b"x" * 100)
        goaway = peer.goaway(timeout=5)
        assert goaway is not None and goaway.error_code == ErrorCodes.FRAME_SIZE_ERROR
    finally:
        peer.close()
    still_serving(server)
