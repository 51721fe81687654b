"""A raw HTTP/2 peer for the conformance table (`test_conformance.py`): exact frames out, every
frame the server sends parsed back (header blocks decoded with hpack), and the outcome checks.

Frames are built byte by byte (`frame`) so that malformed ones are as easy to send as valid
ones; header blocks come from hpack's encoder or, for the HPACK cases, from the representation
builders below (`literal`, `integer`, `huffman`), which never touch our encoder's dynamic table.

Every wait has a deadline (`WAIT`). "The server did nothing about it" is told without waiting
for a timeout: `settled()` makes two PING round trips, the second sent once the first is
answered, so everything the server wrote in answer to the frames before the first PING (in the
same read of the socket or an earlier one) arrives before the second PING's ACK.
"""
from __future__ import annotations

import itertools
import socket
import time
from collections import deque
from dataclasses import dataclass

import pytest
from h2.errors import ErrorCodes
from hpack import Decoder, Encoder
from hpack.hpack import encode_integer
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
WAIT = 5.0  # seconds any single outcome may take

# frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
TYPE_NAMES = ("DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
              "GOAWAY", "WINDOW_UPDATE", "CONTINUATION")
# flags
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)


def code_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return hex(code)


def frame(kind: int, flags: int, stream: int, payload: bytes = b"", length: int | None = None) -> bytes:
    """One frame as bytes; `length` overrides the length field, `stream` may carry the R bit."""
    length = len(payload) if length is None else length
    return length.to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def settings_payload(settings) -> bytes:
    return b"".join(key.to_bytes(2, "big") + value.to_bytes(4, "big") for key, value in settings)


def priority_payload(depends_on: int, weight: int, exclusive: bool) -> bytes:
    """`weight` is the wire byte (0-255, i.e. the weight minus one)."""
    return (depends_on | (0x80000000 if exclusive else 0)).to_bytes(4, "big") + bytes((weight,))


# HPACK representations (RFC 7541 section 6), built by hand
def integer(value: int, prefix_bits: int, pattern: int = 0) -> bytes:
    encoded = bytearray(encode_integer(value, prefix_bits))
    encoded[0] |= pattern
    return bytes(encoded)


def huffman(text: bytes, padding: str = "eos", eos_at: int | None = None) -> bytes:
    """Huffman code of `text` (RFC 7541 appendix B), padded to an octet as the RFC says
    ("eos": the most significant bits of EOS), with zero bits ("zeros"), or with a whole octet
    more of EOS bits ("long"); `eos_at` puts the EOS symbol itself before that position."""
    symbols = list(text)
    if eos_at is not None:
        symbols.insert(eos_at, 256)
    bits = count = 0
    for symbol in symbols:
        bits = bits << REQUEST_CODES_LENGTH[symbol] | REQUEST_CODES[symbol]
        count += REQUEST_CODES_LENGTH[symbol]
    pad = -count % 8
    if padding == "zeros":
        assert pad, "zero padding needs a code that does not end on an octet"
        bits <<= pad
    else:
        if padding == "long":
            pad += 8
        bits = bits << pad | (1 << pad) - 1
    return bits.to_bytes((count + pad) // 8, "big")


def string(text: bytes, use_huffman: bool = False) -> bytes:
    data = huffman(text) if use_huffman else text
    return integer(len(data), 7, 0x80 if use_huffman else 0) + data


LITERAL = {"incremental": (0x40, 6), "without": (0x00, 4), "never": (0x10, 4)}


def literal(name: bytes, value: bytes, kind: str = "without", name_index: int = 0,
            use_huffman: bool = False) -> bytes:
    """A literal header field representation: with incremental indexing, without indexing or
    never indexed; the name from the tables (`name_index`) or as a string."""
    pattern, prefix_bits = LITERAL[kind]
    name_part = b"" if name_index else string(name, use_huffman)
    return integer(name_index, prefix_bits, pattern) + name_part + string(value, use_huffman)


def plain_block(fields) -> bytes:
    """A header block that leaves the dynamic table alone: literals without indexing."""
    return b"".join(literal(name.encode(), value.encode()) for name, value in fields)


def size_update(size: int) -> bytes:
    return integer(size, 5, 0x20)


@dataclass(eq=False)
class Frame:
    kind: int
    flags: int
    stream: int
    payload: bytes
    fields: list | None = None  # the decoded header block of HEADERS / PUSH_PROMISE

    @property
    def code(self) -> int:
        if self.kind == GOAWAY:
            return int.from_bytes(self.payload[4:8], "big")
        return int.from_bytes(self.payload[:4], "big")

    @property
    def data(self) -> bytes:
        """A DATA frame's content without padding."""
        if self.flags & PADDED:
            return self.payload[1:len(self.payload) - self.payload[0]]
        return self.payload

    def __repr__(self) -> str:
        name = TYPE_NAMES[self.kind] if self.kind < len(TYPE_NAMES) else f"type {self.kind:#x}"
        text = f"{name}(stream={self.stream}, flags={self.flags:#x}"
        if self.kind in (GOAWAY, RST_STREAM):
            text += f", {code_name(self.code)}"
            if self.kind == GOAWAY and self.payload[8:]:
                text += f", {self.payload[8:80]!r}"
        elif self.fields is not None:
            text += f", {self.fields!r}"
        elif self.kind in (PING, DATA):
            text += f", {self.payload[:40]!r}"
        return text + ")"


class NoOutcome(Exception):
    """Nothing decisive arrived before the deadline."""


class Peer:
    """One client connection: frames out as bytes, frames in as `Frame`s."""

    _payloads = itertools.count(1)

    def __init__(self, port: int, context=None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.port = port
        self.scheme = "http" if context is None else "https"
        self.encoder = Encoder()
        self.decoder = Decoder(max_header_list_size=1 << 20)
        self.buffer = bytearray()
        self.backlog: deque[Frame] = deque()  # read, and left for the next reader
        self.log: list[Frame] = []            # everything read since the handshake
        self.closed = False
        self.server_settings: dict[int, int] = {}
        self.probes: set[bytes] = set()
        self._block: list | None = None       # a header block waiting for its CONTINUATION

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.sock.close()

    def fail(self, message: str):
        pytest.fail(f"{message}\nframes from the server: {self.log!r}", pytrace=False)

    # output
    def send(self, *chunks: bytes) -> None:
        """Send bytes; the server may already have closed, which some cases are about."""
        try:
            self.sock.sendall(b"".join(chunks))
        except OSError:
            pass

    def block(self, fields) -> bytes:
        return self.encoder.encode(fields)

    def common(self, method: str = "GET", path: str = "/", extra=()) -> list[tuple[str, str]]:
        return [(":method", method), (":scheme", self.scheme), (":path", path),
                (":authority", f"127.0.0.1:{self.port}"), *extra]

    def headers(self, stream: int, block: bytes, end_stream: bool = True, end_headers: bool = True,
                pad: int | None = None, priority: tuple | None = None) -> bytes:
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        payload = block
        if priority is not None:
            flags |= PRIORITY_FLAG
            payload = priority_payload(*priority) + payload
        if pad is not None:
            flags |= PADDED
            payload = bytes((pad,)) + payload + bytes(pad)
        return frame(HEADERS, flags, stream, payload)

    def request(self, stream: int, method: str = "GET", path: str = "/", extra=(), fields=None,
                **options) -> bytes:
        """A HEADERS frame with a request (`fields` replaces the whole list)."""
        return self.headers(stream, self.block(self.common(method, path, extra) if fields is None else fields),
                            **options)

    @staticmethod
    def data(stream: int, payload: bytes, end_stream: bool = False, pad: int | None = None) -> bytes:
        flags = END_STREAM if end_stream else 0
        if pad is not None:
            flags |= PADDED
            payload = bytes((pad,)) + payload + bytes(pad)
        return frame(DATA, flags, stream, payload)

    @staticmethod
    def continuation(stream: int, block: bytes, end_headers: bool = True) -> bytes:
        return frame(CONTINUATION, END_HEADERS if end_headers else 0, stream, block)

    @staticmethod
    def priority(stream: int, depends_on: int = 0, weight: int = 15, exclusive: bool = False) -> bytes:
        return frame(PRIORITY, 0, stream, priority_payload(depends_on, weight, exclusive))

    @staticmethod
    def rst(stream: int, code: int = ErrorCodes.CANCEL) -> bytes:
        return frame(RST_STREAM, 0, stream, code.to_bytes(4, "big"))

    @staticmethod
    def settings(*settings: tuple[int, int], ack: bool = False) -> bytes:
        return frame(SETTINGS, ACK if ack else 0, 0, settings_payload(settings))

    @staticmethod
    def ping(payload: bytes = bytes(8), ack: bool = False, flags: int = 0) -> bytes:
        return frame(PING, flags | (ACK if ack else 0), 0, payload)

    @staticmethod
    def goaway(last_stream: int = 0, code: int = ErrorCodes.NO_ERROR, debug: bytes = b"") -> bytes:
        return frame(GOAWAY, 0, 0, last_stream.to_bytes(4, "big") + code.to_bytes(4, "big") + debug)

    @staticmethod
    def window_update(stream: int, increment: int) -> bytes:
        return frame(WINDOW_UPDATE, 0, stream, increment.to_bytes(4, "big"))

    def push_promise(self, stream: int, promised: int, fields) -> bytes:
        return frame(PUSH_PROMISE, END_HEADERS, stream, promised.to_bytes(4, "big") + self.block(fields))

    # input
    def frames(self, timeout: float = WAIT):
        """Frames from the server until it closes the connection; `NoOutcome` at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            if self.backlog:
                yield self.backlog.popleft()
                continue
            received = self._parse()
            if received is not None:
                self.log.append(received)
                yield received
                continue
            if self.closed:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoOutcome(f"nothing decisive within {timeout} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:  # reset by the server, or a TLS alert
                data = b""
            if data:
                self.buffer += data
            else:
                self.closed = True

    def _parse(self) -> Frame | None:
        buffer = self.buffer
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                return None
            received = Frame(buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF,
                             bytes(buffer[9:9 + length]))
            del buffer[:9 + length]
            if received.kind in (HEADERS, PUSH_PROMISE):
                fragment = received.payload
                if received.flags & PADDED:
                    fragment = fragment[1:len(fragment) - fragment[0]]
                if received.kind == HEADERS and received.flags & PRIORITY_FLAG:
                    fragment = fragment[5:]
                if received.kind == PUSH_PROMISE:
                    fragment = fragment[4:]
                if not received.flags & END_HEADERS:
                    self._block = [received, fragment]  # handed out once its block is complete
                    continue
                received.fields = self.decoder.decode(fragment, raw=True)
            elif received.kind == CONTINUATION and self._block is not None:
                self._block[1] += received.payload
                if not received.flags & END_HEADERS:
                    continue
                received, fragment = self._block
                self._block = None
                received.fields = self.decoder.decode(fragment, raw=True)
            return received
        return None

    def wait_for(self, predicate, what: str) -> Frame:
        """The first frame satisfying `predicate`; the frames before it stay for later readers."""
        skipped = []
        try:
            for received in self.frames():
                if predicate(received):
                    self.backlog.extendleft(reversed(skipped))
                    return received
                skipped.append(received)
        except NoOutcome:
            self.fail(f"no {what} within {WAIT} s")
        self.fail(f"the connection closed before {what}")

    def handshake(self, settings=()) -> None:
        """Preface and SETTINGS both ways, as a client does; the server's SETTINGS must be its
        first frame, and ours are acknowledged (so applied) when this returns."""
        self.send(PREFACE, self.settings(*settings))
        try:
            first = next(self.frames(), None)
        except NoOutcome:
            first = None
        if first is None or first.kind != SETTINGS or first.flags & ACK:
            self.fail(f"the server's first frame is {first!r}, not SETTINGS")
        payload = first.payload
        self.server_settings = {int.from_bytes(payload[i:i + 2], "big"): int.from_bytes(payload[i + 2:i + 6], "big")
                                for i in range(0, len(payload), 6)}
        self.send(self.settings(ack=True))
        self.wait_for(lambda f: f.kind == SETTINGS and f.flags & ACK, "SETTINGS ACK")
        self.log.clear()

    def apply_settings(self, *settings: tuple[int, int]) -> None:
        self.send(self.settings(*settings))
        self.wait_for(lambda f: f.kind == SETTINGS and f.flags & ACK, "SETTINGS ACK")

    def finish(self, stream: int) -> None:
        """Wait for the end of the server's response on `stream`."""
        self.wait_for(lambda f: f.stream == stream and f.kind in (DATA, HEADERS) and f.flags & END_STREAM,
                      f"the end of the response on stream {stream}")

    def probe(self) -> bytes:
        payload = next(self._payloads).to_bytes(8, "big")
        self.probes.add(payload)
        self.send(self.ping(payload))
        return payload

    def settled(self):
        """Frames until the server has provably acted on everything sent so far (two PING round
        trips, see the module docstring); ends early when the server closes."""
        first, second = self.probe(), None
        for received in self.frames():
            if received.kind == PING and received.flags & ACK:
                if received.payload == first and second is None:
                    second = self.probe()
                    continue
                if received.payload == second:
                    return
            yield received

    def wait_closed(self) -> None:
        try:
            for _ in self.frames():
                pass
        except NoOutcome:
            self.fail(f"the connection stayed open {WAIT} s after the error")


# outcomes
def connection_error(peer: Peer, codes, close_ok: bool = False) -> None:
    """GOAWAY with one of `codes`, then the connection closes (RFC 9113 5.4.1); with `close_ok`
    a close without GOAWAY is accepted too (a connection that never became HTTP/2)."""
    expected = "/".join(code_name(code) for code in codes)
    try:
        for received in peer.settled():
            if received.kind == GOAWAY:
                if received.code not in codes:
                    peer.fail(f"GOAWAY with {code_name(received.code)} where {expected} was expected")
                peer.wait_closed()
                return
            if received.kind == RST_STREAM:
                peer.fail(f"a stream error {received!r} where a connection error {expected} was expected")
    except NoOutcome:
        peer.fail(f"no GOAWAY {expected} and no close within {WAIT} s")
    if peer.closed:
        if not close_ok:
            peer.fail(f"the connection closed without GOAWAY {expected}")
        return
    peer.fail(f"no connection error {expected}: the server went on answering PING")


def stream_error(peer: Peer, stream: int | None, codes, escalate: bool = True) -> None:
    """RST_STREAM on `stream` (None: any) with one of `codes`, after which the connection still
    answers PING; with `escalate` a connection error with one of `codes` is accepted too
    (RFC 9113 5.4: an endpoint MAY treat a stream error as a connection error)."""
    expected = "/".join(code_name(code) for code in codes)
    try:
        for received in peer.settled():
            if received.kind == RST_STREAM:
                if stream is not None and received.stream != stream:
                    peer.fail(f"{received!r} where stream {stream} should be reset with {expected}")
                if received.code not in codes:
                    peer.fail(f"RST_STREAM with {code_name(received.code)} where {expected} was expected")
                accepted(peer)  # a stream error leaves the connection usable
                return
            if received.kind == GOAWAY:
                if not escalate:
                    peer.fail(f"a connection error {received!r} where RST_STREAM {expected} was required")
                if received.code not in codes:
                    peer.fail(f"GOAWAY with {code_name(received.code)} where {expected} was expected")
                peer.wait_closed()
                return
    except NoOutcome:
        peer.fail(f"no RST_STREAM {expected} within {WAIT} s")
    if peer.closed:
        peer.fail(f"the connection closed without RST_STREAM or GOAWAY {expected}")
    peer.fail(f"no stream error {expected}: the server went on answering PING")


def accepted(peer: Peer) -> None:
    """The server took what was sent without an error and still answers PING, and sent no
    PING ACK of its own accord (one for a PING with ACK, say)."""
    try:
        for received in peer.settled():
            if received.kind in (GOAWAY, RST_STREAM):
                peer.fail(f"{received!r} for frames that must be accepted")
            if received.kind == PING and received.flags & ACK and received.payload not in peer.probes:
                peer.fail(f"{received!r} answers no PING we sent")
    except NoOutcome:
        peer.fail(f"no PING ACK within {WAIT} s")
    if peer.closed:
        peer.fail("the connection closed")


def response(peer: Peer, stream: int = 1, status: int = 200, body=None) -> None:
    """A complete response on `stream` with `status`; `body` is the exact body, or a
    function of it that must return true."""
    fields, content = None, bytearray()
    try:
        for received in peer.frames():
            if received.kind == GOAWAY or (received.kind == RST_STREAM and received.stream == stream):
                peer.fail(f"{received!r} instead of a response on stream {stream}")
            if received.stream != stream:
                continue
            if received.kind == HEADERS and fields is None:
                if dict(received.fields)[b":status"].startswith(b"1"):
                    continue
                fields = received.fields
            elif received.kind == DATA:
                content += received.data
            if received.kind in (HEADERS, DATA) and received.flags & END_STREAM:
                break
        else:
            peer.fail(f"the connection closed before the response on stream {stream} ended")
    except NoOutcome:
        peer.fail(f"no complete response on stream {stream} within {WAIT} s")
    got = int(dict(fields)[b":status"])
    if got != status:
        peer.fail(f"status {got} where {status} was expected; body {bytes(content)!r}")
    if body is not None and not (body(bytes(content)) if callable(body) else bytes(content) == body):
        peer.fail(f"unexpected body {bytes(content)!r}")


def data_frame(peer: Peer, stream: int, length: int) -> None:
    """The next DATA frame on `stream` is `length` octets long (flow control)."""
    received = peer.wait_for(lambda f: f.kind in (GOAWAY, RST_STREAM) or (f.kind == DATA and f.stream == stream),
                             f"DATA on stream {stream}")
    if received.kind != DATA:
        peer.fail(f"{received!r} instead of DATA on stream {stream}")
    if len(received.payload) != length:
        peer.fail(f"a DATA frame of {len(received.payload)} octets where the window allowed {length}")


def closes(peer: Peer) -> None:
    """The server closes the connection (whatever it sends before)."""
    peer.wait_closed()
