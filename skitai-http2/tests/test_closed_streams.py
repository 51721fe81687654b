"""h2's record of closed streams, kept a byte per stream id (`ClosedStreams`): what it tells h2
about a late frame, and what it costs on a long-lived connection."""
import tracemalloc

import h2.config
import h2.connection
import pytest
from h2.errors import ErrorCodes
from h2.stream import StreamClosedBy
from hpack import Encoder
from hyperframe.frame import HeadersFrame, RstStreamFrame

from skitai_http2.closedstreams import ClosedStreams
from skitai_http2.session import H2Session, SessionError

REQUEST = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "example")]


def test_records_how_each_stream_closed_for_the_last_span_ids():
    closed = ClosedStreams(span=8)
    closed[1] = StreamClosedBy.SEND_END_STREAM
    closed[3] = None  # closed implicitly
    closed[5] = StreamClosedBy.SEND_RST_STREAM
    assert (1 in closed, 3 in closed, 2 in closed, 7 in closed) == (True, True, False, False)
    assert (closed[1], closed[3], closed[5]) == (StreamClosedBy.SEND_END_STREAM, None, StreamClosedBy.SEND_RST_STREAM)
    with pytest.raises(KeyError):
        closed[7]
    assert len(closed) == 3
    for stream_id in range(7, 41, 2):
        closed[stream_id] = StreamClosedBy.RECV_RST_STREAM
    assert all(stream_id in closed for stream_id in range(33, 41, 2))  # the last 8 ids at least
    assert 1 not in closed and 21 not in closed and closed[39] is StreamClosedBy.RECV_RST_STREAM
    assert len(closed._codes) <= 2 * 8
    closed[1] = StreamClosedBy.SEND_END_STREAM  # long forgotten: not recorded again
    assert 1 not in closed


def test_a_jump_in_stream_ids_forgets_the_older_ones():
    closed = ClosedStreams(span=8)
    closed[1] = StreamClosedBy.SEND_RST_STREAM
    closed[2**31 - 1] = StreamClosedBy.SEND_END_STREAM
    assert 1 not in closed and closed[2**31 - 1] is StreamClosedBy.SEND_END_STREAM
    assert len(closed._codes) <= 2 * 8


def late_headers_after(count):
    """What a session does with HEADERS on stream 1, which it reset, after `count` more requests."""
    server = H2Session()
    server.start()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.receive_data(server.data_to_send())
    client.send_headers(1, REQUEST, end_stream=False)
    server.receive(client.data_to_send(), 0.0)
    server.reset(1, ErrorCodes.CANCEL)
    client.receive_data(server.data_to_send())
    for stream_id in range(3, 3 + 2 * count, 2):
        client.send_headers(stream_id, REQUEST, end_stream=True)
        server.receive(client.data_to_send(), 0.0)
        server.send_head(stream_id, 204, [], end_stream=True)
        client.receive_data(server.data_to_send())
    late = HeadersFrame(1, data=Encoder().encode([(b"x", b"y")]), flags=["END_HEADERS", "END_STREAM"])
    try:
        server.receive(late.serialize(), 0.0)
    except SessionError as error:
        return error.error_code
    reply = RstStreamFrame(1)
    reply.error_code = ErrorCodes.STREAM_CLOSED
    assert server.data_to_send().endswith(reply.serialize())
    return "stream reset"


@pytest.mark.parametrize("count", [0, 4095])
def test_a_late_frame_on_a_stream_reset_up_to_4096_streams_ago_costs_only_a_reset(count):
    assert late_headers_after(count) == "stream reset"


def test_a_late_frame_on_a_stream_long_forgotten_ends_the_connection():
    assert late_headers_after(9000) == ErrorCodes.PROTOCOL_ERROR


def answer_no_body(server, stream_id):
    server.send_head(stream_id, 204, [], end_stream=True)


def answer_one_frame(server, stream_id):
    server.send_head(stream_id, 200, [], end_stream=False)
    server.queue(stream_id, b"hello")
    server.end(stream_id)  # goes out at once


def answer_by_flush(server, stream_id):
    server.send_head(stream_id, 200, [], end_stream=False)
    server.queue(stream_id, b"x" * 40000)  # more than a frame: left to `flush`
    server.end(stream_id, [(b"x-trailer", b"1")])
    assert server.flush(0.0) == ([stream_id], [])


def answer_reset(server, stream_id):
    server.reset(stream_id, ErrorCodes.CANCEL)


@pytest.mark.parametrize("answer, closed_by", [
    (answer_no_body, StreamClosedBy.SEND_END_STREAM), (answer_one_frame, StreamClosedBy.SEND_END_STREAM),
    (answer_by_flush, StreamClosedBy.SEND_END_STREAM), (answer_reset, StreamClosedBy.SEND_RST_STREAM)])
def test_a_stream_the_answer_closed_is_forgotten_at_once(answer, closed_by):
    """h2 keeps closed streams until it walks them all (every few dozen new streams); those our
    last frame closed go at once, recorded as h2's walk records them."""
    server = H2Session()
    server.start()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.send_headers(1, REQUEST, end_stream=True)
    server.receive(client.data_to_send(), 0.0)
    answer(server, 1)
    assert 1 not in server.h2.streams
    assert server.h2._closed_streams[1] is closed_by
    client.receive_data(server.data_to_send())
    client.send_headers(3, REQUEST, end_stream=True)  # the connection goes on
    events = server.receive(client.data_to_send(), 0.0)
    assert [(type(e).__name__, e.stream_id) for e in events if hasattr(e, "stream_id")] == [
        ("RequestReceived", 3), ("StreamEnded", 3)]


def test_a_long_lived_connection_keeps_its_closed_streams_in_kilobytes():
    """h2's own record (an OrderedDict) grew by some 650 KiB over these 6000 requests."""
    server = H2Session()
    server.start()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server.receive(client.data_to_send(), 0.0)
    block = Encoder().encode(REQUEST)  # sent again and again

    def serve(stream_ids):
        for stream_id in stream_ids:
            server.receive(HeadersFrame(stream_id, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize(), 0.0)
            server.send_head(stream_id, 204, [], end_stream=True)
            server.data_to_send()

    serve(range(1, 201, 2))  # caches and buffers at their working size
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        serve(range(201, 201 + 2 * 6000, 2))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(server.h2._closed_streams) <= 2 * server.h2.MAX_CLOSED_STREAMS
    assert grown < 64 * 1024
