"""`skitai_http2.frames`: frames made and read as bytes must be the ones h2 makes and reads,
with h2's checks, state and windows unchanged. Each case runs twice on identical sessions, once
through h2's own API and once through `frames`, and compares bytes, states and errors."""
import importlib.metadata

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
from h2.errors import ErrorCodes
from hpack import Encoder
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame, SettingsFrame
from packaging.requirements import Requirement

from skitai_http2 import frames
from skitai_http2.session import H2Session, Limits, SessionError

REQUEST = [(b":method", b"GET"), (b":path", b"/x"), (b":scheme", b"http"), (b":authority", b"example")]
RESPONSE = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"server", b"test")]


def pair(limits=None, client_settings=None, requests=1):
    """A started server session and h2's client, `requests` streams opened (1, 3, ...)."""
    server = H2Session(limits)
    server.start()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    if client_settings:
        client.update_settings(client_settings)
    client.receive_data(server.data_to_send())
    for index in range(requests):
        client.send_headers(1 + 2 * index, REQUEST, end_stream=True)
    server.receive(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send())
    return server, client


def twins(**kwargs):
    """Two sessions brought to the same state: (through h2, through frames)."""
    return pair(**kwargs)[0].h2, pair(**kwargs)[0].h2


def stream_state(conn, stream_id):
    stream = conn.streams[stream_id]
    return (stream.state_machine.state, stream.outbound_flow_control_window,
            conn.outbound_flow_control_window, conn.state_machine.state)


def same_outcome(h2_call, frames_call):
    """Run both; they must raise the same error or write the same bytes."""
    outcomes = []
    for call in (h2_call, frames_call):
        try:
            call()
            outcomes.append(None)
        except h2.exceptions.H2Error as error:
            outcomes.append(type(error))
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


@pytest.mark.parametrize("headers,end_stream", [
    (RESPONSE, False),
    (RESPONSE, True),
    ([(b":status", b"100")], False),
    ([(b":status", b"200"), (b"x-big", b"v" * 40000)], False),   # HEADERS + CONTINUATION frames
    ([(b":status", b"200"), (b"x-big", b"v" * 40000)], True),
])
def test_response_headers_are_h2s_bytes_and_state(headers, end_stream):
    reference, lean = twins()
    reference.send_headers(1, headers, end_stream=end_stream)
    frames.send_headers(lean, 1, headers, end_stream)
    assert lean.data_to_send() == reference.data_to_send()
    assert stream_state(lean, 1) == stream_state(reference, 1)
    # the encoder's table moved alike: the next block is the same too
    reference.send_headers(1, [(b"x-after", b"1")], end_stream=True) if not end_stream else None
    if not end_stream:
        frames.send_headers(lean, 1, [(b"x-after", b"1")], True)
        assert lean.data_to_send() == reference.data_to_send()
    assert lean.encoder.header_table.dynamic_entries == reference.encoder.header_table.dynamic_entries


def test_a_block_split_into_continuation_frames_carries_end_stream_on_headers_only():
    _, lean = twins()
    frames.send_headers(lean, 1, [(b":status", b"200"), (b"x-big", b"v" * 40000)], True)
    from h2peer import split_frames
    parsed, rest = split_frames(lean.data_to_send())
    assert rest == b""
    assert [type(frame) for frame in parsed] == [HeadersFrame, ContinuationFrame, ContinuationFrame]
    assert parsed[0].flags == {"END_STREAM"}
    assert parsed[-1].flags == {"END_HEADERS"}
    assert all(len(frame.data) <= lean.max_outbound_frame_size for frame in parsed)


def test_trailers_and_protocol_errors_match_h2():
    reference, lean = twins()
    for conn, send in ((reference, lambda c, h, e: c.send_headers(1, h, end_stream=e)),
                       (lean, lambda c, h, e: frames.send_headers(c, 1, h, e))):
        send(conn, RESPONSE, False)
    # informational with END_STREAM, then trailers without END_STREAM: both refused alike
    assert same_outcome(lambda: reference.send_headers(1, [(b":status", b"103")], end_stream=True),
                        lambda: frames.send_headers(lean, 1, [(b":status", b"103")], True)) is not None
    reference.data_to_send(), lean.data_to_send()
    reference.send_headers(1, [(b"x-trailer", b"1")], end_stream=True)
    frames.send_headers(lean, 1, [(b"x-trailer", b"1")], True)
    assert lean.data_to_send() == reference.data_to_send()
    # the stream is closed now: more headers or data are h2's StreamClosedError either way
    assert same_outcome(lambda: reference.send_headers(1, RESPONSE),
                        lambda: frames.send_headers(lean, 1, RESPONSE)) is h2.exceptions.StreamClosedError
    assert same_outcome(lambda: reference.send_data(1, b"x"),
                        lambda: frames.send_data(lean, 1, b"x")) is h2.exceptions.StreamClosedError


def test_trailers_need_end_stream():
    reference, lean = twins()
    reference.send_headers(1, RESPONSE)
    frames.send_headers(lean, 1, RESPONSE)
    reference.send_data(1, b"body")
    frames.send_data(lean, 1, b"body")
    assert same_outcome(lambda: reference.send_headers(1, [(b"x-trailer", b"1")]),
                        lambda: frames.send_headers(lean, 1, [(b"x-trailer", b"1")])) is not None


def test_headers_on_a_stream_that_does_not_exist_go_to_h2():
    reference, lean = twins()
    assert same_outcome(lambda: reference.send_headers(7, RESPONSE),
                        lambda: frames.send_headers(lean, 7, RESPONSE)) is not None
    assert same_outcome(lambda: reference.send_data(7, b"x"),
                        lambda: frames.send_data(lean, 7, b"x")) is not None


@pytest.mark.parametrize("data,end_stream", [
    (b"hello", False), (b"hello", True), (b"", True), (memoryview(b"abcdef")[1:4], True), (b"d" * 16384, False),
])
def test_data_frames_are_h2s_bytes_and_windows(data, end_stream):
    reference, lean = twins()
    reference.send_headers(1, RESPONSE)
    frames.send_headers(lean, 1, RESPONSE)
    reference.send_data(1, data, end_stream=end_stream)
    frames.send_data(lean, 1, data, end_stream)
    assert lean.data_to_send() == reference.data_to_send()
    assert stream_state(lean, 1) == stream_state(reference, 1)


def test_data_respects_the_flow_control_windows_and_frame_size():
    window = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100}
    reference, lean = twins(client_settings=window)
    reference.send_headers(1, RESPONSE)
    frames.send_headers(lean, 1, RESPONSE)
    reference.data_to_send(), lean.data_to_send()
    assert same_outcome(lambda: reference.send_data(1, b"x" * 101),
                        lambda: frames.send_data(lean, 1, b"x" * 101)) is h2.exceptions.FlowControlError
    assert lean.data_to_send() == b"" and stream_state(lean, 1) == stream_state(reference, 1)
    reference.send_data(1, b"x" * 100)
    frames.send_data(lean, 1, b"x" * 100)
    assert lean.local_flow_control_window(1) == reference.local_flow_control_window(1) == 0
    assert same_outcome(lambda: reference.send_data(1, b"y"),
                        lambda: frames.send_data(lean, 1, b"y")) is h2.exceptions.FlowControlError
    assert lean.data_to_send() == reference.data_to_send()

    reference, lean = twins()  # 65535-byte window, 16384-byte frames
    reference.send_headers(1, RESPONSE)
    frames.send_headers(lean, 1, RESPONSE)
    assert same_outcome(lambda: reference.send_data(1, b"z" * 16385),
                        lambda: frames.send_data(lean, 1, b"z" * 16385)) is h2.exceptions.FrameTooLargeError
    assert stream_state(lean, 1) == stream_state(reference, 1)


def test_the_connection_window_bounds_every_stream():
    reference, lean = twins(requests=5)
    for conn, send_headers, send_data in (
            (reference, lambda c, s: c.send_headers(s, RESPONSE), lambda c, s, d: c.send_data(s, d)),
            (lean, lambda c, s: frames.send_headers(c, s, RESPONSE), lambda c, s, d: frames.send_data(c, s, d))):
        for stream_id in (1, 3, 5, 7):
            send_headers(conn, stream_id)
            for _ in range(4):
                if conn.local_flow_control_window(stream_id) >= 16384:
                    send_data(conn, stream_id, b"w" * 16384)
    assert lean.outbound_flow_control_window == reference.outbound_flow_control_window < 16384
    assert same_outcome(lambda: reference.send_data(9, b"w" * 16384),
                        lambda: frames.send_data(lean, 9, b"w" * 16384)) is not None
    assert lean.data_to_send() == reference.data_to_send()


# reading request HEADERS
def raw_headers(stream_id, block, flags=("END_HEADERS", "END_STREAM"), **fields):
    frame = HeadersFrame(stream_id, flags=flags, **fields)
    frame.data = block
    return frame.serialize()


def test_a_plain_headers_frame_is_read_without_hyperframe():
    block = Encoder().encode(REQUEST)
    buffer = bytearray(raw_headers(3, block) + b"rest")
    frame = frames.take_request_headers(buffer, 16384)
    assert (frame.stream_id, frame.data, "END_STREAM" in frame.flags) == (3, block, True)
    assert buffer == b"rest"
    frame = frames.take_request_headers(bytearray(raw_headers(5, block, flags=("END_HEADERS",))), 16384)
    assert "END_STREAM" not in frame.flags and "PRIORITY" not in frame.flags


@pytest.mark.parametrize("raw", [
    raw_headers(1, b"abc", flags=("END_HEADERS", "PADDED"), pad_length=4),
    raw_headers(1, b"abc", flags=("END_HEADERS", "PRIORITY"), depends_on=0, stream_weight=15),
    raw_headers(1, b"abc", flags=("END_STREAM",)),          # continued in CONTINUATION frames
    raw_headers(1, b"abc")[:-1],                              # incomplete
    raw_headers(1, b"x" * 20)[:9],                            # only the frame header
    b"\x00\x00\x03\x01\x05\x00\x00\x00\x00abc",               # stream 0
    raw_headers(1, b"x" * 20000),                             # longer than the frame size
    b"\x00\x00\x00\x04\x00\x00\x00\x00\x00",                  # SETTINGS
])
def test_other_frames_are_left_to_h2(raw):
    buffer = bytearray(raw)
    assert frames.take_request_headers(buffer, 16384) is None
    assert buffer == raw


def preface_and_settings():
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    return client.data_to_send()


def receive_raw(raw, limits=None):
    """What a server session makes of the client preface and `raw`: its events, or its error."""
    server = H2Session(limits)
    server.start()
    try:
        return [(type(event).__name__, getattr(event, "stream_id", None), getattr(event, "headers", None))
                for event in server.receive(preface_and_settings() + raw, 0.0)]
    except SessionError as error:
        return ("error", error.error_code)


PRIORITY = {"flags": ("END_HEADERS", "END_STREAM", "PRIORITY"), "depends_on": 0, "stream_weight": 15}


@pytest.mark.parametrize("block", [
    Encoder().encode(REQUEST),
    b"\xff\xff\xff\xff\xff",                             # index out of range: COMPRESSION_ERROR
    b"",                                                 # empty block
    Encoder().encode([*REQUEST, (b"x-big", b"v" * 3000)] * 1),
])
def test_request_headers_decode_as_through_hyperframe(block):
    """The lean read and hyperframe's (forced by a PRIORITY flag) end alike, events or errors."""
    lean = receive_raw(raw_headers(1, block))
    reference = receive_raw(raw_headers(1, block, **PRIORITY))
    if isinstance(reference, tuple):
        assert lean == reference
    else:
        assert [event for event in lean if event[0] != "PriorityUpdated"] == \
            [event for event in reference if event[0] != "PriorityUpdated"]


def received_alike(sequence, limits=None):
    """What a server session makes of `sequence` ((stream id, fields, END_STREAM) HEADERS
    frames and raw bytes), read lean and through hyperframe (a PRIORITY flag on every HEADERS
    frame): events, errors, bytes answered and what the streams hold must be the same."""
    outcomes = []
    for priority in (False, True):
        encoder, raw = Encoder(), b""
        for item in sequence:
            if isinstance(item, bytes):
                raw += item
                continue
            stream_id, fields, end_stream = item
            flags = ("END_HEADERS", "END_STREAM") if end_stream else ("END_HEADERS",)
            extra = {"depends_on": 0, "stream_weight": 15} if priority else {}
            flags += ("PRIORITY",) if priority else ()
            raw += raw_headers(stream_id, encoder.encode(fields), flags=flags, **extra)
        server = H2Session(limits)
        server.start()
        server.data_to_send()
        try:
            events = [(type(event).__name__, getattr(event, "stream_id", None), getattr(event, "headers", None),
                       getattr(event, "stream_ended", None) is not None)
                      for event in server.receive(preface_and_settings() + raw, 0.0)
                      if type(event) is not h2.events.PriorityUpdated]
        except SessionError as error:
            events = ("error", error.error_code, str(error))
        streams = {stream_id: (stream.state_machine.state, stream._expected_content_length,
                               stream.outbound_flow_control_window, stream.inbound_flow_control_window,
                               stream.max_outbound_frame_size, vars(stream.state_machine))
                   for stream_id, stream in server.h2.streams.items()}
        outcomes.append((events, streams, server.data_to_send(), server.h2.highest_inbound_stream_id,
                         server.h2.state_machine.state))
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


BODY_REQUEST = [(b":method", b"POST"), *REQUEST[1:]]


@pytest.mark.parametrize("sequence", [
    [(1, REQUEST, True), (3, REQUEST, False)],
    [(1, BODY_REQUEST, False), (1, [(b"x-trailer", b"1")], True)],                 # trailers
    [(1, BODY_REQUEST, False), (1, [(b"x-trailer", b"1")], False)],                # trailers without END_STREAM
    [(1, [(b":status", b"100"), *REQUEST], True)],                                 # informational in a request
    [(1, [*REQUEST[:2], (b":status", b"103"), *REQUEST[2:]], True)],               # ... after other pseudo-fields
    [(1, [(b":status", b"200"), *REQUEST], True)],                                 # a final :status
    [(1, [*REQUEST, (b"x-a", b"1"), (b":status", b"100")], True)],                 # after a regular field
    [(2, REQUEST, True)],                                                          # a server's stream id
    [(3, REQUEST, True), (1, REQUEST, True)],                                      # ids must grow
    [(1, REQUEST, True), (1, REQUEST, True)],                                      # HEADERS on a half-closed stream
    [(1, [*BODY_REQUEST, (b"content-length", b"abc")], False)],                    # not a length
    [(1, [*BODY_REQUEST, (b"content-length", b"5")], False),
     DataFrame(1, data=b"abc", flags=("END_STREAM",)).serialize()],                # shorter than announced
    [(1, [*BODY_REQUEST, (b"content-length", b"3")], False),
     DataFrame(1, data=b"abc", flags=("END_STREAM",)).serialize()],
    [(1, [(b":method", b"HEAD"), *REQUEST[1:]], True)],
])
def test_request_headers_are_received_as_h2_receives_them(sequence):
    received_alike(sequence)


def test_a_stream_opened_lean_takes_the_windows_and_frame_size_in_force():
    settings = SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1000,
                                          SettingsFrame.MAX_FRAME_SIZE: 20000}).serialize()
    events, streams, *_ = received_alike([settings, (1, REQUEST, True)])
    assert streams[1][2] == 1000 and streams[1][4] == 20000


def test_an_oversized_header_list_is_refused_alike():
    limits = Limits(max_header_list_size=1024)
    block = Encoder().encode([*REQUEST, (b"x-big", b"v" * 2000)])
    lean = receive_raw(raw_headers(1, block), limits)
    assert lean == receive_raw(raw_headers(1, block, **PRIORITY), limits)
    assert lean[0] == "error"


def test_the_concurrent_stream_limit_holds_for_lean_headers():
    limits = Limits(max_concurrent_streams=3)
    block = Encoder().encode(REQUEST)
    raw = b"".join(raw_headers(stream_id, block, flags=("END_HEADERS",)) for stream_id in (1, 3, 5, 7))
    outcome = receive_raw(raw, limits)
    assert outcome == ("error", ErrorCodes.PROTOCOL_ERROR)
    assert receive_raw(raw[:-len(raw) // 4], limits)[-1][:2] == ("RequestReceived", 5)


def test_the_concurrent_stream_limit_holds_between_walks():
    """Under `frames.WALK_AT` streams held h2's walk waits; the limit must hold all the same."""
    block = Encoder().encode(REQUEST)
    limit = frames.WALK_AT + 8
    raw = b"".join(raw_headers(2 * index + 1, block, flags=("END_HEADERS",)) for index in range(limit + 1))
    assert receive_raw(raw, Limits(max_concurrent_streams=limit)) == ("error", ErrorCodes.PROTOCOL_ERROR)
    assert receive_raw(raw, Limits(max_concurrent_streams=limit + 1))[-1][:2] == ("RequestReceived", 2 * limit + 1)


def test_closed_streams_are_still_forgotten():
    server, client = pair()
    for stream_id in range(3, 2 * 500, 2):
        client.send_headers(stream_id, REQUEST, end_stream=True)
        server.receive(client.data_to_send(), 0.0)
        server.send_head(stream_id, 200, [], end_stream=True)
        client.receive_data(server.data_to_send())
        assert len(server.h2.streams) <= max(frames.WALK_AT, 2) + 1


def test_a_finished_stream_cannot_be_opened_again():
    server, client = pair()
    server.send_head(1, 200, [], end_stream=True)
    client.receive_data(server.data_to_send())
    raw = raw_headers(1, client.encoder.encode(REQUEST))
    with pytest.raises(SessionError):
        server.receive(raw, 0.0)


def test_stream_ids_must_grow_for_lean_headers():
    block = Encoder().encode(REQUEST)
    assert receive_raw(raw_headers(5, block) + raw_headers(3, block))[0] == "error"


def test_empty_header_blocks_still_cost_from_their_budget():
    limits = Limits(empty_burst=2, empty_rate=0.0001)
    raw = b"".join(raw_headers(stream_id, b"") for stream_id in (1, 3, 5))
    assert receive_raw(raw, limits) == ("error", ErrorCodes.ENHANCE_YOUR_CALM)


# the session's use of them
def test_a_small_whole_body_ends_its_stream_at_once():
    server, client = pair()
    server.send_head(1, 200, [(b"content-length", b"5")], end_stream=False)
    server.queue(1, b"hello")
    assert server.end(1) is True
    assert server.pending(1) == 0 and server.flush(0.0) == ([], [])
    events = client.receive_data(server.data_to_send())
    assert [type(event) for event in events] == [
        h2.events.ResponseReceived, h2.events.DataReceived, h2.events.StreamEnded]


def test_a_whole_response_goes_at_once_where_the_window_takes_it():
    server, client = pair()
    assert server.send_response(1, 200, [(b"content-length", b"5")], b"hello") is True
    events = client.receive_data(server.data_to_send())
    assert [type(event) for event in events] == [
        h2.events.ResponseReceived, h2.events.DataReceived, h2.events.StreamEnded]
    assert 1 not in server.h2.streams   # forgotten at once, as closed
    assert server.send_response(1, 200, [], b"again") is False


def test_a_whole_response_beyond_the_window_or_frame_is_left_to_the_queue():
    server, _ = pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 3})
    server.data_to_send()
    assert server.send_response(1, 200, [], b"hello") is None
    assert server.data_to_send() == b"" and server.may_send(1)
    server, _ = pair()
    server.data_to_send()
    assert server.send_response(1, 200, [], b"x" * (server.h2.max_outbound_frame_size + 1)) is None
    assert server.data_to_send() == b""


def test_a_body_beyond_the_window_waits_for_flush():
    server, client = pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 3})
    server.send_head(1, 200, [], end_stream=False)
    server.queue(1, b"hello")
    assert server.end(1) is False
    assert server.flush(0.0) == ([], [])
    assert server.pending(1) == 2


def test_trailers_wait_for_flush():
    server, _ = pair()
    server.send_head(1, 200, [], end_stream=False)
    server.queue(1, b"hello")
    assert server.end(1, [(b"x-trailer", b"1")]) is False
    assert server.flush(0.0) == ([1], [])


def test_h2_is_within_the_range_these_internals_were_checked_against():
    """frames.py and session.py use h2 internals (see pyproject.toml): an h2 outside the
    declared range must not pass unnoticed."""
    (requirement,) = [Requirement(text) for text in importlib.metadata.requires("skitai-http2")
                      if Requirement(text).name == "h2"]
    assert requirement.specifier.contains(h2.__version__)
    assert requirement.specifier.contains("4.3.0") and not requirement.specifier.contains("4.5.0")
    assert not requirement.specifier.contains("4.2.0")  # its frame buffer keeps `data`, not `_data`
