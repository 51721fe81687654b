"""The sans-IO session without sockets: h2's client connection on one side, bytes passed by hand."""
import base64

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from h2peer import split_frames
from hyperframe.frame import GoAwayFrame, HeadersFrame, PriorityFrame, SettingsFrame, WindowUpdateFrame

from skitai.budget import Budget
from skitai_http2.session import H2Session, Limits, SessionError, valid_settings_header

REQUEST = [(":method", "GET"), (":path", "/x?y=1"), (":scheme", "http"), (":authority", "example")]


def pair(limits=None, client_settings=None):
    server = H2Session(limits)
    server.start()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    client.initiate_connection()
    if client_settings:
        client.update_settings(client_settings)
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    return server, client


def test_budget_allows_a_burst_then_a_rate():
    budget = Budget(burst=3, rate=1.0)
    assert all(budget.spend(0.0) for _ in range(3))
    assert not budget.spend(0.0)
    assert budget.spend(2.5)  # earned back with time


def test_request_and_flow_controlled_response():
    server, client = pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    client.send_headers(1, REQUEST, end_stream=True)
    events = server.receive(client.data_to_send(), 0.0)
    request = next(e for e in events if isinstance(e, h2.events.RequestReceived))
    assert dict(request.headers)[b":path"] == b"/x?y=1"
    server.send_head(1, 200, [(b"content-type", b"text/plain")], end_stream=False)
    assert server.queue(1, b"a" * 5000) == 5000
    server.end(1)
    assert server.flush(1.0) == ([], [])          # 1000 bytes go out, the rest waits
    assert server.pending(1) == 4000
    received = client.receive_data(server.data_to_send())
    assert sum(len(e.data) for e in received if isinstance(e, h2.events.DataReceived)) == 1000
    assert server.stalled(5.0, 3.0) == [1]          # blocked since 1.0
    client.increment_flow_control_window(4000, 1)
    server.receive(client.data_to_send(), 6.0)
    assert server.flush(6.0) == ([1], [])
    assert server.stalled(10.0, 3.0) == []
    events = client.receive_data(server.data_to_send())
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_rapid_reset_budget_ends_the_session():
    server, client = pair(Limits(reset_burst=5, reset_rate=1.0))
    with pytest.raises(SessionError) as error:
        for n in range(10):
            client.send_headers(2 * n + 1, REQUEST, end_stream=True)
            client.reset_stream(2 * n + 1)
            server.receive(client.data_to_send(), 0.0)
    assert error.value.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[-1], h2.events.ConnectionTerminated)
    assert events[-1].error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_graceful_goaway_keeps_in_flight_streams_sendable():
    server, client = pair()
    client.send_headers(1, REQUEST, end_stream=True)
    server.receive(client.data_to_send(), 0.0)
    server.goaway()
    server.send_head(1, 200, [], end_stream=False)
    server.queue(1, b"after goaway")
    assert server.end(1) is True  # a small body ends its stream at once
    assert server.flush(0.0) == ([], [])
    assert server.last_stream_id == 1
    frames, rest = split_frames(server.data_to_send())
    assert rest == b""
    assert [type(frame).__name__ for frame in frames] == ["GoAwayFrame", "HeadersFrame", "DataFrame"]
    assert frames[0].last_stream_id == 1 and frames[0].error_code == ErrorCodes.NO_ERROR
    assert frames[2].data == b"after goaway" and "END_STREAM" in frames[2].flags


def test_settings_header_validation():
    payload = SettingsFrame(0, settings={h2.settings.SettingCodes.ENABLE_PUSH: 0}).serialize_body()
    assert valid_settings_header(base64.urlsafe_b64encode(payload).decode().rstrip("="))
    assert valid_settings_header("")  # no settings at all is valid
    assert not valid_settings_header("a")
    assert not valid_settings_header("AAAA!")


def test_budget_refund_earns_credit_up_to_a_burst():
    budget = Budget(burst=2, rate=0.0)
    assert budget.spend(0.0) and budget.spend(0.0) and not budget.spend(0.0)
    budget.refund(2)
    assert budget.spend(0.0)
    budget = Budget(burst=2, rate=10.0)
    budget.refund(100)  # at most one burst of credit: a long download does not pay for a flood
    assert all(budget.spend(5.0) for _ in range(4))  # time does not eat the credit
    assert not budget.spend(5.0)


def push_request(client):
    client.send_headers(1, REQUEST, end_stream=True)


def test_push_promise_then_the_pushed_response():
    server, client = pair()
    push_request(client)
    server.receive(client.data_to_send(), 0.0)
    assert server.may_push(0)
    promised = server.push(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"example"),
                               (b":path", b"/a.png")])
    assert promised == 2
    server.send_head(promised, 200, [], end_stream=False)
    server.queue(promised, b"pushed body")
    assert server.end(promised) is True
    server.send_head(1, 200, [], end_stream=True)
    assert server.flush(0.0) == ([], [])
    events = client.receive_data(server.data_to_send())
    push = next(e for e in events if isinstance(e, h2.events.PushedStreamReceived))
    assert push.parent_stream_id == 1 and dict(push.headers)[":path"] == "/a.png"
    assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived) and e.stream_id == 2) \
        == b"pushed body"


def test_no_push_when_disabled_ending_or_over_the_limits():
    server, client = pair(client_settings={h2.settings.SettingCodes.ENABLE_PUSH: 0})
    assert not server.may_push(0)
    server, client = pair(client_settings={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    assert server.may_push(1) and not server.may_push(2)
    server, client = pair(Limits(max_pushed_streams=4))
    assert server.may_push(3) and not server.may_push(4)
    server.goaway()
    assert not server.may_push(0)


def test_push_on_an_ended_stream_is_refused():
    server, client = pair()
    push_request(client)
    server.receive(client.data_to_send(), 0.0)
    server.send_head(1, 200, [], end_stream=True)
    assert server.push(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"example"),
                           (b":path", b"/late")]) is None


def test_trailers_end_the_stream():
    server, client = pair()
    push_request(client)
    server.receive(client.data_to_send(), 0.0)
    server.send_head(1, 200, [], end_stream=False)
    server.queue(1, b"body")
    server.end(1, [(b"x-checksum", b"abc")])
    assert server.flush(0.0) == ([1], [])
    events = client.receive_data(server.data_to_send())
    trailers = next(e for e in events if isinstance(e, h2.events.TrailersReceived))
    assert trailers.headers == [("x-checksum", "abc")] and trailers.stream_ended is not None


@pytest.mark.parametrize("frame, reason", [
    (WindowUpdateFrame(0, window_increment=1), b"WINDOW_UPDATE"),
    (PriorityFrame(3, depends_on=0, stream_weight=1), b"PRIORITY"),
    (HeadersFrame(3, b"", flags=["END_HEADERS", "END_STREAM"]), b"empty HEADERS"),
])
def test_frames_that_carry_nothing_cost_from_a_budget(frame, reason):
    """Eleven at one instant end the session; eleven spread over time do not."""
    limits = Limits(window_update_burst=10, window_update_rate=1.0, idle_burst=10, idle_rate=1.0,
                    empty_burst=10, empty_rate=1.0, malformed_burst=100)
    server, client = pair(limits)
    for n in range(11):
        if isinstance(frame, HeadersFrame):
            frame.stream_id = 2 * n + 1
        server.receive(frame.serialize(), float(n))
    server, client = pair(limits)
    with pytest.raises(SessionError) as error:
        for n in range(11):
            if isinstance(frame, HeadersFrame):
                frame.stream_id = 2 * n + 1
            server.receive(frame.serialize(), 0.0)
    assert error.value.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    goaway = next(f for f in split_frames(server.data_to_send())[0] if isinstance(f, GoAwayFrame))
    assert reason in goaway.additional_data


def test_data_frames_sent_earn_window_updates():
    server, client = pair(Limits(window_update_burst=10, window_update_rate=0.0))
    push_request(client)
    server.receive(client.data_to_send(), 0.0)
    server.send_head(1, 200, [], end_stream=False)
    server.queue(1, b"x" * 16384 * 20)
    server.end(1)
    server.flush(0.0)  # 4 frames fill the client's 64 KiB window: 8 updates earned
    for _ in range(18):
        server.receive(WindowUpdateFrame(0, window_increment=1).serialize(), 0.0)
    with pytest.raises(SessionError):
        server.receive(WindowUpdateFrame(0, window_increment=1).serialize(), 0.0)


def test_empty_data_with_end_stream_is_free():
    server, client = pair(Limits(empty_burst=2, empty_rate=0.0))
    for n in range(10):
        client.send_headers(2 * n + 1, REQUEST, end_stream=False)
        client.send_data(2 * n + 1, b"", end_stream=True)
        server.receive(client.data_to_send(), 0.0)


def test_malformed_requests_cost_from_a_budget():
    server, client = pair(Limits(malformed_burst=3, malformed_rate=0.0))
    for stream_id in (1, 3, 5):
        client.send_headers(stream_id, REQUEST, end_stream=True)
        server.receive(client.data_to_send(), 0.0)
        server.reject(stream_id, 0.0)
    assert not server.closed
    client.send_headers(7, REQUEST, end_stream=True)
    server.receive(client.data_to_send(), 0.0)
    server.reject(7, 0.0)
    assert server.closed
    events = client.receive_data(server.data_to_send())
    assert [e.error_code for e in events if isinstance(e, h2.events.StreamReset)] == [ErrorCodes.PROTOCOL_ERROR] * 4
    assert isinstance(events[-1], h2.events.ConnectionTerminated)
    assert events[-1].error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_remembered_header_blocks_follow_the_dynamic_table():
    """A block of indexes decodes from memory while the table is unchanged, and afresh once
    an entry was added (the same bytes then name another field)."""
    from skitai_http2.session import _Decoder

    decoder = _Decoder()
    literal = b"\x40\x01a\x011"                # literal with incremental indexing: a: 1
    assert decoder.decode(literal, raw=True) == [(b"a", b"1")]
    indexed = b"\xbe"                           # index 62: the newest dynamic entry
    assert decoder.decode(indexed, raw=True) == [(b"a", b"1")]
    assert decoder.decode(indexed, raw=True) == [(b"a", b"1")]  # remembered
    assert decoder.decode(b"\x40\x01b\x012", raw=True) == [(b"b", b"2")]
    assert decoder.decode(indexed, raw=True) == [(b"b", b"2")]  # the table moved on
    assert decoder.decode(literal, raw=True) == [(b"a", b"1")]  # a block that adds is never reused
    assert decoder.decode(b"\xbf", raw=True) == [(b"b", b"2")]  # 63: so it did add again
    assert list(decoder.header_table.dynamic_entries)[:3] == [(b"a", b"1"), (b"b", b"2"), (b"a", b"1")]


def test_remembered_response_blocks_follow_the_encoder_table():
    """The encoder reuses a block only while its table is unchanged, so a peer decoding every
    block in order always gets the fields that were encoded."""
    from hpack import Decoder, NeverIndexedHeaderTuple

    from skitai_http2.session import _Encoder

    encoder, peer, sent = _Encoder(), Decoder(), []

    def encode(fields):
        block = encoder.encode(list(fields))
        sent.append((block, [tuple(field) for field in fields]))
        return block

    head = [(b":status", b"200"), (b"x-a", b"1")]
    first, second, third = encode(head), encode(head), encode(head)
    assert second == third != first                   # literals first, then indexes, remembered
    encode([(b"x-b", b"2")])                           # a new entry moves the table
    moved = encode(head)
    assert moved != second                             # x-a's index changed with it
    encoder.header_table_size = 0                      # a size change must be signalled
    resized = encode(head)
    assert resized[:1] == b"\x20"                      # the block starts with the size update
    secret = encode([(b":status", b"200"), NeverIndexedHeaderTuple(b"x-a", b"1")])
    assert secret[1:2] == b"\x10"                      # a never-indexed literal, not an index
    for block, fields in sent:
        assert peer.decode(block, raw=True) == fields
