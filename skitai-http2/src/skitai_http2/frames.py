"""The frames of a plain request and its response made and read as bytes, while h2 keeps the
books: every stream and connection state transition, window and limit check still goes through
h2's own state machines and counters, only h2's frame objects are skipped.

Why: profiling the h2c hello (`bench/callgrind.py --scenario h2c`, then cProfile of the loop
thread) put h2's sending and frame reading above the WSGI request's own work, much of it in
hyperframe objects (a `Flags` set per frame, `serialize` through `struct`, `repr` for a trace
log that is off) and in checks the session's configuration switches off anyway; the frames
themselves are a 9-byte header in front of bytes we already have.

* `send_headers` and `send_data` write what `H2Connection.send_headers` / `send_data` write
  for a response on a stream the client opened (byte for byte: `tests/test_h2_frames.py`), after
  the same checks and state transitions, in the same order (the HPACK encoder, which changes its
  table as it encodes, runs after the stream's transition, as in h2). A stream that does not
  exist yet goes to h2 itself; padding and priority are not offered (the server sends neither).
* `take_request_headers` reads a HEADERS frame that carries a whole header block without padding
  or priority (what clients send) into a `RequestHeaders`, which `receive_request_headers`
  handles as h2's `_receive_headers_frame` does hyperframe's `HeadersFrame`: concurrent stream
  limit, decoding (and its errors), stream ids and states, all through h2's objects. Every
  other frame, and any frame while a header block continues in CONTINUATION frames, is left to h2.
* The state machine steps of both go through `transitions` (h2's tables without hashing h2's
  enums), and a request stream is opened and takes its headers as h2 would, without the header
  pipeline that `H2Session`'s configuration leaves empty (`tests/test_h2_frames.py` compares
  events, errors, bytes and stream state with h2's reading).

Relies on h2 internals (`H2Connection._data_to_send`, `_receive_headers_frame`,
`_get_or_create_stream`, `_begin_new_stream`, `highest_inbound_stream_id` and the frame
dispatch table, `_decode_headers`, the frame buffer's `_data`, `H2Stream`'s constructor and
`_initialize_content_length`, the stream state machine inputs and the state tables that
`transitions` reads): hence the bounded h2 requirement of this distribution, from 4.3 (the first
to keep its input in a bytearray `_data`).
"""
from __future__ import annotations

import h2.connection
import h2.exceptions
from h2.connection import AllowedStreamIDs, _decode_headers
from h2.events import TrailersReceived
from h2.exceptions import StreamIDTooLowError
from h2.stream import H2Stream

from . import transitions
from .framing import FRAME_HEADER, HEADER_SIZE
from .transitions import advance, connection_step

DATA = 0x0
HEADERS = 0x1
CONTINUATION = 0x9
END_STREAM = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY = 0x20


def frame_header(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return FRAME_HEADER.pack(length << 8 | kind, flags, stream_id)


def send_headers(conn: h2.connection.H2Connection, stream_id: int,
                 headers: list[tuple[bytes, bytes]], end_stream: bool = False) -> None:
    """`conn.send_headers(stream_id, headers, end_stream=end_stream)` of a server, for the
    headers of a response or its trailers (already bytes, lower case and checked, as the
    session's configuration tells h2 they are)."""
    stream = conn.streams.get(stream_id)
    if stream is None or conn.config.client_side:
        conn.send_headers(stream_id, headers, end_stream=end_stream)
        return
    send_stream_headers(conn, stream, headers, end_stream)


def send_stream_headers(conn: h2.connection.H2Connection, stream: H2Stream,
                        headers: list[tuple[bytes, bytes]], end_stream: bool = False) -> None:
    """`send_headers` on a stream of a server connection, for a caller that has the stream."""
    stream_id = stream.stream_id
    # h2's `is_informational_response`, for a list that starts with :status unless it is trailers
    informational = bool(headers) and headers[0][0] == b":status" and headers[0][1][:1] == b"1"
    if informational and end_stream:
        raise h2.exceptions.ProtocolError("Cannot set END_STREAM on informational responses.")
    connection_step(conn.state_machine, transitions.CONNECTION_SEND_HEADERS)
    machine = stream.state_machine
    advance(machine, transitions.SEND_INFORMATIONAL_HEADERS if informational else transitions.SEND_HEADERS)
    block = conn.encoder.encode(headers)
    if end_stream:
        advance(machine, transitions.SEND_END_STREAM)
    elif machine.trailers_sent:
        raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set.")
    # (h2 also sets `stream.request_method` from a `:method` in the headers: a response has
    # none, and only a client reads it.)
    out = conn._data_to_send
    size = conn.max_outbound_frame_size
    if len(block) <= size:
        out += FRAME_HEADER.pack(len(block) << 8 | HEADERS,
                                 END_HEADERS | END_STREAM if end_stream else END_HEADERS, stream_id)
        out += block
        return
    view = memoryview(block)
    kind, flags = HEADERS, END_STREAM if end_stream else 0
    for start in range(0, len(block), size):
        piece = view[start:start + size]
        if start + size >= len(block):
            flags |= END_HEADERS
        out += frame_header(len(piece), kind, flags, stream_id)
        out += piece
        kind, flags = CONTINUATION, 0


def send_data(conn: h2.connection.H2Connection, stream_id: int, data: bytes | memoryview,
              end_stream: bool = False) -> None:
    """`conn.send_data(stream_id, data, end_stream=end_stream)`, without padding: the same
    flow-control and frame-size errors, the same window accounting."""
    stream = conn.streams.get(stream_id)
    if stream is None:
        conn.send_data(stream_id, data, end_stream=end_stream)  # h2's error for a missing stream
        return
    send_stream_data(conn, stream, data, end_stream)


def send_stream_data(conn: h2.connection.H2Connection, stream: H2Stream, data: bytes | memoryview,
                     end_stream: bool = False) -> None:
    """`send_data` for a caller that has the stream."""
    stream_id = stream.stream_id
    size = len(data)
    if size > 0 and size > min(conn.outbound_flow_control_window, stream.outbound_flow_control_window):
        raise h2.exceptions.FlowControlError(
            f"Cannot send {size} bytes, flow control window is {conn.local_flow_control_window(stream_id)}")
    if size > conn.max_outbound_frame_size:
        raise h2.exceptions.FrameTooLargeError(
            f"Cannot send frame size {size}, max frame size is {conn.max_outbound_frame_size}")
    connection_step(conn.state_machine, transitions.CONNECTION_SEND_DATA)
    machine = stream.state_machine
    advance(machine, transitions.SEND_DATA)
    if end_stream:
        advance(machine, transitions.SEND_END_STREAM)
    stream.outbound_flow_control_window -= size
    conn.outbound_flow_control_window -= size
    out = conn._data_to_send
    out += FRAME_HEADER.pack(size << 8 | DATA, END_STREAM if end_stream else 0, stream_id)
    out += data


_ENDED = frozenset(("END_HEADERS", "END_STREAM"))
_NOT_ENDED = frozenset(("END_HEADERS",))


class RequestHeaders:
    """A HEADERS frame with a whole header block and nothing else, as much of hyperframe's
    `HeadersFrame` as h2's `_receive_headers_frame` reads (`stream_id`, `data`, `flags`)."""

    __slots__ = ("stream_id", "data", "flags")

    def __init__(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flags = _ENDED if end_stream else _NOT_ENDED

    # h2 formats every frame for its trace log, even when it is off: object's repr is made in C,
    # without a Python call for every request
    __repr__ = object.__repr__


# h2 walks every stream it holds to count the open ones, forgetting the closed ones as it goes
# (its only way to drop them), on each HEADERS frame that opens a stream. While it holds fewer
# than this many (and fewer than the concurrent stream limit) the walk can wait.
WALK_AT = 32


def receive_request_headers(conn: h2.connection.H2Connection, frame: RequestHeaders,
                            headers_as_decoded: bool = False) -> tuple[list, list]:
    """h2's `_receive_headers_frame` for a `RequestHeaders` (which has no PRIORITY to handle):
    the same decoding, connection and stream transitions, new-stream checks (ids that only grow,
    odd for a client) and stream events; only h2's walk over its streams is made once every few
    dozen streams instead of on every one. Fewer streams held than SETTINGS_MAX_CONCURRENT_STREAMS
    cannot be too many open ones, so the limit holds exactly as before.

    With `headers_as_decoded` (h2 configured to neither normalize nor validate received headers
    nor decode them to str, as `H2Session` does) the stream takes the headers as h2's
    `H2Stream.receive_headers` would, without building the validation flags and the header
    pipeline that such a configuration leaves empty."""
    streams = conn.streams
    stream_id = frame.stream_id
    stream = streams.get(stream_id)
    if stream is None and (len(streams) >= WALK_AT or len(streams) >= conn.local_settings.max_concurrent_streams):
        return conn._receive_headers_frame(frame)
    headers = _decode_headers(conn.decoder, frame.data)
    events = connection_step(conn.state_machine, transitions.CONNECTION_RECV_HEADERS)
    end_stream = frame.flags is _ENDED
    if not headers_as_decoded:
        stream = conn._get_or_create_stream(stream_id, AllowedStreamIDs(not conn.config.client_side))
        frames, stream_events = stream.receive_headers(headers, end_stream, conn.config.header_encoding)
        return frames, events + stream_events
    if stream is None:
        stream = _open_client_stream(conn, stream_id)
    informational = False
    for name, value in headers:  # h2's `is_informational_response`, inline: once per request
        if name == b":status":
            informational = value[:1] == b"1"
            break
        if name[:1] != b":":
            break
    if informational:  # refused by the state machine, in h2's words
        frames, stream_events = stream.receive_headers(headers, end_stream, None)
        return frames, events + stream_events
    machine = stream.state_machine
    stream_events = advance(machine, transitions.RECV_HEADERS)
    event = stream_events[0]
    if end_stream:
        ended = advance(machine, transitions.RECV_END_STREAM)
        event.stream_ended = ended[0]
        stream_events += ended
    stream._initialize_content_length(headers)
    if not end_stream and type(event) is TrailersReceived:
        raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set")
    event.headers = list(headers)
    return [], events + stream_events


def _open_client_stream(conn: h2.connection.H2Connection, stream_id: int) -> H2Stream:
    """h2's `_begin_new_stream(stream_id, AllowedStreamIDs.ODD)` on a server, for an odd (a
    client's) stream id; an even one goes to h2, whose errors for it depend on our own ids."""
    if not stream_id % 2:
        return conn._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
    if stream_id <= conn.highest_inbound_stream_id:
        raise StreamIDTooLowError(stream_id, conn.highest_inbound_stream_id)
    stream = H2Stream(stream_id, config=conn.config,
                      inbound_window_size=conn.local_settings.initial_window_size,
                      outbound_window_size=conn.remote_settings.initial_window_size)
    stream.max_outbound_frame_size = conn.max_outbound_frame_size
    conn.streams[stream_id] = stream
    conn.highest_inbound_stream_id = stream_id
    return stream


def take_request_headers(buffer: bytearray, max_frame_size: int) -> RequestHeaders | None:
    """The plain HEADERS frame at the start of `buffer` (h2's input after the client preface),
    removed from it; None, with `buffer` unchanged, when the next frame is anything else, is
    incomplete, or breaks a rule h2 reports (stream 0, longer than `max_frame_size`)."""
    if len(buffer) < HEADER_SIZE:
        return None
    length_and_kind, flags, stream_id = FRAME_HEADER.unpack_from(buffer)
    if length_and_kind & 0xFF != HEADERS or flags & (PADDED | PRIORITY) or not flags & END_HEADERS:
        return None
    length = length_and_kind >> 8
    stream_id &= 0x7FFFFFFF   # the reserved bit is ignored (RFC 9113 4.1)
    end = HEADER_SIZE + length
    if not stream_id or length > max_frame_size or len(buffer) < end:
        return None
    frame = RequestHeaders(stream_id, bytes(buffer[HEADER_SIZE:end]), bool(flags & END_STREAM))
    del buffer[:end]
    return frame
