"""RFC 9114 and RFC 9204 error handling, case by case as h3spec (kazu-yamamoto/h3spec) checks a
server, plus the cases of the RFCs it leaves out: a raw HTTP/3 client (aioquic's QUIC layer only,
its frames, QPACK field sections and streams built by hand here, so nothing is validated on the
way out) sends what a broken or hostile peer would, and the test reads the error the server
answers with: a connection error (CONNECTION_CLOSE with its code) or a stream error (RESET_STREAM
of that request only, the connection serving the next request).

Every h3spec case is enforced by aioquic's `H3Connection` inside the server; the tests pin that
Skitai's server (which subclasses it, turns some of its errors into stream errors, and reads
streams before it) keeps them. One rule aioquic does not check, the end of a QPACK stream
(RFC 9204 4.2), is checked by the plugin's `ServerH3`. Covered elsewhere: connection-specific
fields, `te`, `host` against `:authority`, line feeds and spaces in fields (`test_h3_protocol.py`);
reserved stream types and reserved frames on the control stream being ignored
(`test_h3_floods.py`).
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass

import pylsqpack
import pytest
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, BufferReadError, encode_uint_var
from aioquic.h3.connection import H3_ALPN, ErrorCode, FrameType, StreamType, encode_frame
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, StreamDataReceived, StreamReset
from h3apps import APP

from skitai_http3.testing import SERVER_CONTROL_STREAM, run

CANCEL_PUSH = 0x3
HTTP2_FRAME_TYPES = (0x2, 0x6, 0x8, 0x9)   # PRIORITY, PING, WINDOW_UPDATE, CONTINUATION (RFC 9114 7.2.8)
HTTP2_SETTING = 0x2                        # SETTINGS_ENABLE_PUSH (RFC 9114 7.2.4.1)
GREASE_FRAME_TYPE = 0x21
GREASE_SETTING = 0x21
STATIC_TABLE_SIZE = 99                     # RFC 9204 Appendix A: indexes 0 to 98


def qpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An integer with an N-bit prefix (RFC 7541 5.1, as RFC 9204 uses it)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """A field line with a literal name and value, no Huffman coding (RFC 9204 4.5.6)."""
    return qpack_int(len(name), 3, 0x20) + name + qpack_int(len(value), 7) + value


def field_section(fields, *lines: bytes) -> bytes:
    """A QPACK field section using no dynamic table: Required Insert Count 0, Base 0, then the
    fields as literals and `lines` as they are."""
    return b"\x00\x00" + b"".join(literal(name, value) for name, value in fields) + b"".join(lines)


GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"), (b":path", b"/")]
TRAILERS = [(b"x-trailer", b"1")]


def headers(fields=GET, *lines: bytes) -> bytes:
    return encode_frame(FrameType.HEADERS, field_section(fields, *lines))


def settings(*pairs: tuple[int, int]) -> bytes:
    return encode_frame(FrameType.SETTINGS, b"".join(encode_uint_var(key) + encode_uint_var(value)
                                                     for key, value in pairs))


class RawClient(QuicConnectionProtocol):
    """A QUIC client that writes HTTP/3 by hand and records what the server does: stream data
    and resets by stream, and the connection's end."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.received: dict[int, bytearray] = defaultdict(bytearray)
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.terminated: ConnectionTerminated | None = None
        self.decoder = pylsqpack.Decoder(0, 0)   # the server may use no dynamic table with us

    def quic_event_received(self, event) -> None:
        if isinstance(event, StreamDataReceived):
            self.received[event.stream_id] += event.data
            if event.end_stream:
                self.ended.add(event.stream_id)
        elif isinstance(event, StreamReset):
            self.resets[event.stream_id] = event.error_code
        elif isinstance(event, ConnectionTerminated):
            self.terminated = event

    def send(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self._quic.send_stream_data(stream_id, data, end_stream=end)
        self.transmit()

    def open_uni(self, stream_type: int, data: bytes = b"", end: bool = False) -> int:
        stream_id = self._quic.get_next_available_stream_id(is_unidirectional=True)
        self.send(stream_id, encode_uint_var(stream_type) + data, end)
        return stream_id

    def start(self, control: bytes | None = None) -> int:
        """The client's control stream (beginning with `control`, else an empty SETTINGS) and
        QPACK streams; returns the control stream's id."""
        stream_id = self.open_uni(StreamType.CONTROL, settings() if control is None else control)
        self.encoder_stream = self.open_uni(StreamType.QPACK_ENCODER)
        self.decoder_stream = self.open_uni(StreamType.QPACK_DECODER)
        return stream_id

    def request(self, data: bytes, end: bool = True) -> int:
        stream_id = self._quic.get_next_available_stream_id()
        self.send(stream_id, data, end)
        return stream_id

    def status(self, stream_id: int) -> int | None:
        """The final status of the response on `stream_id`, once the response has ended."""
        if stream_id not in self.ended:
            return None
        buf = Buffer(data=bytes(self.received[stream_id]))
        try:
            while not buf.eof():
                frame_type, length = buf.pull_uint_var(), buf.pull_uint_var()
                payload = buf.pull_bytes(length)
                if frame_type == FrameType.HEADERS:
                    status = int(dict(self.decoder.feed_header(stream_id, payload)[1])[b":status"])
                    if status >= 200:
                        return status
        except BufferReadError:
            return None
        return None

    async def until(self, condition, seconds: float = 5.0):
        for _ in range(int(seconds / 0.01)):
            if (value := condition()) is not None:
                return value
            await asyncio.sleep(0.01)
        return None

    async def connection_error(self) -> int | None:
        terminated = await self.until(lambda: self.terminated)
        return None if terminated is None else terminated.error_code

    async def outcome(self, stream_id: int) -> tuple[str, int] | None:
        """("reset", code), ("status", status) or ("closed", code), whichever comes first."""
        def seen():
            if stream_id in self.resets:
                return "reset", self.resets[stream_id]
            if (status := self.status(stream_id)) is not None:
                return "status", status
            if self.terminated is not None:
                return "closed", self.terminated.error_code
            return None
        return await self.until(seen)


@dataclass
class Target:
    port: int
    cafile: str


@pytest.fixture
def h3(serve, certs) -> Target:
    """A started server serving `APP` over HTTP/3."""
    return Target(serve(APP).quic_port, certs.ca)


@contextlib.asynccontextmanager
async def raw_connect(target: Target):
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    configuration.load_verify_locations(target.cafile)
    async with connect("127.0.0.1", target.port, configuration=configuration, create_protocol=RawClient) as client:
        yield client


def connection_error(target: Target, act) -> int | None:
    """The code the server closed the connection with after `act(client)`, None if it did not."""

    async def session():
        async with raw_connect(target) as client:
            act(client)
            return await client.connection_error()
    return run(session)


# the control stream (RFC 9114 6.2.1, 7.2.4)

@pytest.mark.parametrize("frames, code", [
    (encode_frame(FrameType.DATA, b""), ErrorCode.H3_MISSING_SETTINGS),           # h3spec 6.2.1
    (encode_frame(FrameType.GOAWAY, encode_uint_var(0)), ErrorCode.H3_MISSING_SETTINGS),
    (settings() + encode_frame(FrameType.DATA, b""), ErrorCode.H3_FRAME_UNEXPECTED),     # h3spec 7.2.1
    (settings() + headers(), ErrorCode.H3_FRAME_UNEXPECTED),                       # h3spec 7.2.2
    (settings() + settings(), ErrorCode.H3_FRAME_UNEXPECTED),                      # h3spec 7.2.4
    (settings() + encode_frame(FrameType.PUSH_PROMISE, encode_uint_var(0) + field_section(GET)),
     ErrorCode.H3_FRAME_UNEXPECTED),
    *((settings() + encode_frame(kind, b"\x00"), ErrorCode.H3_FRAME_UNEXPECTED) for kind in HTTP2_FRAME_TYPES),
    (settings((HTTP2_SETTING, 200)), ErrorCode.H3_SETTINGS_ERROR),                 # h3spec 7.2.4.1
    (settings((0x1, 0), (0x1, 0)), ErrorCode.H3_SETTINGS_ERROR),                   # a setting twice
], ids=["data-first", "goaway-first", "data", "headers", "second-settings", "push-promise",
        "h2-priority", "h2-ping", "h2-window-update", "h2-continuation", "h2-setting", "duplicate-setting"])
def test_a_bad_control_stream_is_a_connection_error(h3, frames, code):
    assert connection_error(h3, lambda client: client.start(frames)) == code


def test_closing_the_control_stream_is_a_connection_error(h3):   # h3spec 6.2.1
    def close(client):
        client.send(client.start(), b"", end=True)
    assert connection_error(h3, close) == ErrorCode.H3_CLOSED_CRITICAL_STREAM


def test_resetting_the_control_stream_is_a_connection_error(h3):
    def reset(client):
        client._quic.reset_stream(client.start(), ErrorCode.H3_NO_ERROR)
        client.transmit()
    assert connection_error(h3, reset) == ErrorCode.H3_CLOSED_CRITICAL_STREAM


def test_stopping_the_servers_control_stream_is_a_connection_error(h3):   # RFC 9114 6.2.1
    def stop(client):
        client.start()
        client._quic.stop_stream(SERVER_CONTROL_STREAM, ErrorCode.H3_NO_ERROR)
        client.transmit()
    assert connection_error(h3, stop) == ErrorCode.H3_CLOSED_CRITICAL_STREAM


@pytest.mark.parametrize("stream_type", [StreamType.CONTROL, StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER,
                                         StreamType.PUSH], ids=["control", "encoder", "decoder", "push"])
def test_a_second_critical_stream_or_a_client_push_stream_is_a_connection_error(h3, stream_type):
    """RFC 9114 6.2.1 and 6.2.2, RFC 9204 4.2: one stream of each type; only servers push."""
    def second(client):
        client.start()
        client.open_uni(stream_type, settings() if stream_type == StreamType.CONTROL else b"")
    assert connection_error(h3, second) == ErrorCode.H3_STREAM_CREATION_ERROR


# QPACK (RFC 9204)

def test_qpack_an_invalid_static_index_is_decompression_failed(h3):   # h3spec 3.1
    def bad_index(client):
        client.start()
        client.request(headers(GET, qpack_int(STATIC_TABLE_SIZE, 6, 0xC0)))
    assert connection_error(h3, bad_index) == ErrorCode.QPACK_DECOMPRESSION_FAILED


def test_qpack_a_table_capacity_over_the_limit_is_an_encoder_stream_error(h3):   # h3spec 4.1.3
    def too_large(client):
        client.start()
        client.send(client.encoder_stream, qpack_int(1 << 30, 5, 0x20))
    assert connection_error(h3, too_large) == ErrorCode.QPACK_ENCODER_STREAM_ERROR


def test_qpack_an_insert_count_increment_of_0_is_a_decoder_stream_error(h3):   # h3spec 4.4.3
    def zero(client):
        client.start()
        client.send(client.decoder_stream, b"\x00")
    assert connection_error(h3, zero) == ErrorCode.QPACK_DECODER_STREAM_ERROR

@pytest.mark.parametrize("which", ["encoder_stream", "decoder_stream"])
def test_closing_a_qpack_stream_is_a_connection_error(h3, which):
    """RFC 9204 4.2; aioquic checks the control stream only, Skitai's `ServerH3` these."""
    def close(client):
        client.start()
        client.send(getattr(client, which), b"", end=True)
    assert connection_error(h3, close) == ErrorCode.H3_CLOSED_CRITICAL_STREAM


# request streams (RFC 9114 4.1, 7.1, 7.2)

@pytest.mark.parametrize("data", [
    encode_frame(FrameType.DATA, b"x") + headers(),                          # h3spec 4.1
    encode_frame(CANCEL_PUSH, encode_uint_var(0)) + headers(),               # h3spec 7.2.5
    headers() + settings(),
    headers() + encode_frame(FrameType.GOAWAY, encode_uint_var(0)),
    headers() + headers(TRAILERS) + encode_frame(FrameType.DATA, b"x"),
    headers() + headers(TRAILERS) + headers(TRAILERS),
    *(encode_frame(kind, b"\x00") + headers() for kind in HTTP2_FRAME_TYPES),  # RFC 9114 7.2.8
], ids=["data-first", "cancel-push", "settings", "goaway", "data-after-trailers", "headers-after-trailers",
        "h2-priority", "h2-ping", "h2-window-update", "h2-continuation"])
def test_a_frame_out_of_place_on_a_request_stream_is_a_connection_error(h3, data):
    def send(client):
        client.start()
        client.request(data)
    assert connection_error(h3, send) == ErrorCode.H3_FRAME_UNEXPECTED


def test_a_frame_cut_short_by_the_end_of_its_stream_is_a_frame_error(h3):   # RFC 9114 7.1
    def cut(client):
        client.start()
        client.request(headers()[:-3])
    assert connection_error(h3, cut) == ErrorCode.H3_FRAME_ERROR


MALFORMED = {   # RFC 9114 4.1.2, 4.2, 4.3.1: malformed requests, each a stream error H3_MESSAGE_ERROR
    "duplicate-pseudo": GET + [(b":method", b"GET")],                                     # h3spec 4.1.1
    "missing-pseudo": [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/")],   # h3spec 4.1.3
    "unknown-pseudo": GET + [(b":foo", b"bar")],                                          # h3spec 4.1.3
    "pseudo-after-field": GET[:3] + [(b"foo", b"bar")] + GET[3:],                         # h3spec 4.1.3
    "response-pseudo": GET + [(b":status", b"200")],
    "uppercase-name": GET + [(b"X-Upper", b"1")],
    "empty-path": [*GET[:3], (b":path", b"")],
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_request_is_a_stream_error_and_the_connection_goes_on(h3, name):
    async def session():
        async with raw_connect(h3) as client:
            client.start()
            malformed = await client.outcome(client.request(headers(MALFORMED[name])))
            return malformed, await client.outcome(client.request(headers()))
    malformed, after = run(session)
    assert malformed == ("reset", ErrorCode.H3_MESSAGE_ERROR)
    assert after == ("status", 200)


@pytest.mark.parametrize("declared, sent", [(5, 20), (50, 20)], ids=["longer", "shorter"])
def test_a_body_other_than_its_content_length_is_a_stream_error(h3, declared, sent):   # RFC 9114 4.1.2
    post = [(b":method", b"POST"), *GET[1:3], (b":path", b"/echo"), (b"content-length", b"%d" % declared)]

    async def session():
        async with raw_connect(h3) as client:
            client.start()
            wrong = await client.outcome(client.request(headers(post) + encode_frame(FrameType.DATA, b"x" * sent)))
            return wrong, await client.outcome(client.request(headers()))
    wrong, after = run(session)
    assert wrong == ("reset", ErrorCode.H3_MESSAGE_ERROR)
    assert after == ("status", 200)


def test_a_request_stream_ended_before_its_headers_is_request_incomplete(h3):   # RFC 9114 4.1.2
    async def session():
        async with raw_connect(h3) as client:
            client.start()
            empty = await client.outcome(client.request(b""))
            return empty, await client.outcome(client.request(headers()))
    empty, after = run(session)
    assert empty == ("reset", ErrorCode.H3_REQUEST_INCOMPLETE)
    assert after == ("status", 200)


def test_unknown_frame_types_and_settings_are_ignored(h3):   # RFC 9114 7.2.8, 7.2.4.1, 9
    async def session():
        async with raw_connect(h3) as client:
            client.start(settings((GREASE_SETTING, 7)) + encode_frame(GREASE_FRAME_TYPE, b"x"))
            stream_id = client.request(encode_frame(GREASE_FRAME_TYPE, b"ab") + headers()
                                       + encode_frame(GREASE_FRAME_TYPE, b""))
            return await client.outcome(stream_id)
    assert run(session) == ("status", 200)
