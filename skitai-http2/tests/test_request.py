"""Request header validation (RFC 9113 8.2-8.3), in the pass that replaces h2's."""
import h2.events
import pytest
from apps import APP
from h2.errors import ErrorCodes
from h2peer import Client, RawPeer, request_headers

from skitai.fields import FORBIDDEN_TRAILER_FIELDS
from skitai.streamfields import BadRequest, check_trailers, request_fields

BASE = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/a?b=c"), (b":authority", b"example:80")]


def test_a_request_and_its_host():
    method, target, fields, protocol = request_fields(BASE + [(b"cookie", b"a=1"), (b"cookie", b"b=2")])
    assert (method, target, protocol) == ("GET", "/a?b=c", None)
    assert fields == [("host", "example:80"), ("cookie", "a=1"), ("cookie", "b=2")]
    assert request_fields(BASE + [(b"host", b"example:80"), (b"te", b"trailers")])[2] == [
        ("host", "example:80"), ("te", "trailers")]


def test_an_extended_connect_names_its_protocol():
    method, target, fields, protocol = request_fields(
        [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
         (b":path", b"/chat?room=1"), (b":authority", b"example"), (b"sec-websocket-version", b"13")])
    assert (method, target, protocol) == ("CONNECT", "/chat?room=1", "websocket")
    assert fields == [("host", "example"), ("sec-websocket-version", "13")]


def test_a_plain_connect_targets_its_authority():
    method, target, fields, protocol = request_fields([(b":method", b"CONNECT"), (b":authority", b"example:443")])
    assert (method, target, protocol) == ("CONNECT", "example:443", None)
    assert fields == [("host", "example:443")]


@pytest.mark.parametrize("headers", [
    BASE + [(b"X-Upper", b"1")],
    BASE + [(b"x-bad", b"a\r\nb: c")],
    BASE + [(b"x-bad", b" padded")],
    BASE + [(b"x-nul", b"a\x00")],
    BASE + [(b"connection", b"close")],
    BASE + [(b"transfer-encoding", b"chunked")],
    BASE + [(b"te", b"gzip")],
    BASE + [(b"host", b"other")],
    BASE + [(b"x-a", b"1"), (b":method", b"GET")],
    BASE + [(b":method", b"POST")],
    BASE + [(b":protocol", b"websocket")],
    [(b":method", b"GET"), (b":scheme", b"http")],
    [(b":method", b"CONNECT")],
    [(b":method", b"CONNECT"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"example:443")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"http://example/")],
    [(b":method", b"G T"), (b":scheme", b"http"), (b":path", b"/")],
    BASE + [(b"", b"x")],
    [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":authority", b"example:443")],
    [(b":method", b"CONNECT"), (b":protocol", b""), (b":scheme", b"http"), (b":path", b"/")],
])
def test_malformed_requests(headers):
    with pytest.raises(BadRequest):
        request_fields(headers)


def test_malformed_request_resets_only_its_stream(serve):
    server = serve(APP)
    peer = RawPeer(server.port)
    try:
        peer.send(peer.request(1, extra=[("x-bad", "a\nb")]), peer.request(3))
        reset = data = None
        for frame in peer.frames(timeout=5):
            name = type(frame).__name__
            if name == "RstStreamFrame" and frame.stream_id == 1:
                reset = frame
            elif name == "DataFrame" and frame.stream_id == 3:
                data = frame
            if reset is not None and data is not None:
                break
        assert reset.error_code == ErrorCodes.PROTOCOL_ERROR
        assert data.data.startswith(b"HTTP/2.0 GET")
    finally:
        peer.close()


def test_trailers():
    check_trailers([(b"x-checksum", b"abc"), (b"grpc-status", b"0")])
    for trailers in ([(b":method", b"POST")], [(b"X-Upper", b"1")], [(b"x-bad", b"a\nb")],
                     [(b"connection", b"close")], [(b"te", b"gzip")], [(b"te", b"trailers")]):
        with pytest.raises(BadRequest):
            check_trailers(trailers)


@pytest.mark.parametrize("name", sorted(FORBIDDEN_TRAILER_FIELDS))
def test_fields_rfc9110_keeps_out_of_trailers_make_the_request_malformed(name):
    with pytest.raises(BadRequest):
        check_trailers([(b"x-checksum", b"abc"), (name.encode(), b"1")])


@pytest.mark.parametrize("threads", [0, 2])
@pytest.mark.parametrize("expect", [True, False])
def test_100_continue_only_for_a_request_that_expects_it(serve, threads, expect):
    """RFC 9110 10.1.1: an interim 100 invites the body the request holds back; a request that
    does not ask gets none (threads=0 answers at once, the pool once the app reads)."""
    server = serve(APP, threads=threads)
    client = Client(server.port)
    seen, until = [], client.until

    def recording_until(predicate, timeout=None):
        events = until(predicate, timeout)
        seen.extend(events)
        return events

    client.until = recording_until
    try:
        stream_id = client.conn.get_next_available_stream_id()
        extra = [("expect", "100-continue")] if expect else []
        client.conn.send_headers(stream_id, request_headers(server.port, "/echo", "POST", extra))
        client.flush()
        if expect:
            client.until(lambda event: isinstance(event, h2.events.InformationalResponseReceived))
        client.conn.send_data(stream_id, b"abc", end_stream=True)
        client.flush()
        headers, body = client.response(stream_id)
        assert headers[":status"] == "200" and body.startswith(b"3 ")
        interim = [dict(event.headers)[":status"] for event in seen
                   if isinstance(event, h2.events.InformationalResponseReceived)]
        assert interim == (["100"] if expect else [])
    finally:
        client.close()
