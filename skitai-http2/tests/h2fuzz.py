"""Random and mutated HTTP/2 frames for the frame fuzzer (test_fuzz_frames.py).

Frames of every type are built with hyperframe's own classes (random stream ids, flags, padding,
settings, windows, error codes, header blocks encoded with hpack), then sometimes mutated on the
wire bytes (a bit flipped, the length, type, flags or stream id rewritten, cut short, garbage
appended), and raw random bytes come in between. Header blocks are mostly requests the test
server routes (plain GETs, uploads, streamed answers, an extended CONNECT the WebSocket endpoint
refuses), so the fuzz reaches the request path and not only the frame parser. Everything comes
from one `random.Random`, so a seed replays a connection byte for byte.
"""
from __future__ import annotations

import random

from hpack import Encoder
from hyperframe.frame import (
    AltSvcFrame,
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PATHS = ["/", "/echo", "/stream", "/piece"]
NAMES = ["x-test", "content-length", "te", "host", "connection", "cookie", "Upper", "x y", "",
         ":path", ":method", ":status", ":protocol", "sec-websocket-version", "expect", "trailer"]
VALUES = ["", "1", "0", "-1", "trailers", "100-continue", "a\r\nb", " lead", "x" * 300, "\x00", "99999999999"]


class FrameFuzzer:
    """Bytes for one connection, after its preface and SETTINGS."""

    def __init__(self, rng: random.Random, authority: str) -> None:
        self.rng = rng
        self.authority = authority
        self.encoder = Encoder()  # one per connection: the server's decoder follows its table
        self.next_stream = 1

    # pieces of a connection
    def piece(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return rng.randbytes(rng.randrange(1, 64))
        data = self.frame().serialize()
        return self.mutate(data) if roll < 0.25 else data

    def frame(self):
        rng = self.rng
        kind = rng.choice([HeadersFrame, HeadersFrame, HeadersFrame, DataFrame, DataFrame, RstStreamFrame,
                           SettingsFrame, PingFrame, WindowUpdateFrame, PriorityFrame, ContinuationFrame,
                           PushPromiseFrame, GoAwayFrame, AltSvcFrame, ExtensionFrame])
        stream_id = self.stream_id()
        if kind is HeadersFrame:
            frame = HeadersFrame(stream_id or 1, self.header_block())
            self.flags(frame, ["END_STREAM", "END_HEADERS", "END_HEADERS", "PADDED", "PRIORITY"])
            if "PRIORITY" in frame.flags:
                frame.depends_on = self.stream_id()
                frame.stream_weight = rng.randrange(256)
                frame.exclusive = rng.random() < 0.5
        elif kind is DataFrame:
            frame = DataFrame(stream_id or 1, rng.randbytes(rng.choice([0, 1, 100, 16384, 20000])))
            self.flags(frame, ["END_STREAM", "PADDED"])
        elif kind is RstStreamFrame:
            frame = RstStreamFrame(stream_id or 1, error_code=rng.choice([0, 1, 2, 8, 0xFF, 2**32 - 1]))
        elif kind is SettingsFrame:
            frame = SettingsFrame(0, settings={rng.randrange(1, 10): rng.choice([0, 1, 2**14 - 1, 2**14, 2**24, 2**31,
                                                                              2**32 - 1])
                                               for _ in range(rng.randrange(4))})
            if rng.random() < 0.2:
                frame = SettingsFrame(0, flags=["ACK"])
        elif kind is PingFrame:
            frame = PingFrame(0, opaque_data=rng.randbytes(8), flags=["ACK"] if rng.random() < 0.3 else [])
        elif kind is WindowUpdateFrame:
            frame = WindowUpdateFrame(stream_id, window_increment=rng.choice([0, 1, 65535, 2**31 - 1]))
        elif kind is PriorityFrame:
            frame = PriorityFrame(stream_id or 1, depends_on=self.stream_id(), stream_weight=rng.randrange(256),
                                  exclusive=rng.random() < 0.5)
        elif kind is ContinuationFrame:
            frame = ContinuationFrame(stream_id or 1, self.header_block())
            self.flags(frame, ["END_HEADERS"])
        elif kind is PushPromiseFrame:
            frame = PushPromiseFrame(stream_id or 1, promised_stream_id=2 * rng.randrange(1, 100),
                                     data=self.header_block())
            self.flags(frame, ["END_HEADERS", "PADDED"])
        elif kind is GoAwayFrame:
            frame = GoAwayFrame(0, last_stream_id=self.stream_id(), error_code=rng.randrange(16),
                                additional_data=rng.randbytes(rng.randrange(8)))
        elif kind is AltSvcFrame:
            frame = AltSvcFrame(stream_id, origin=b"" if stream_id else b"http://x", field=b'h2=":443"')
        else:
            frame = ExtensionFrame(rng.randrange(0x0B, 0x100), stream_id, flag_byte=rng.randrange(256),
                                   body=rng.randbytes(rng.randrange(32)))
        if "PADDED" in frame.flags:
            frame.pad_length = rng.randrange(256)
        return frame

    def flags(self, frame, names: list[str]) -> None:
        for name in names:
            if self.rng.random() < 0.5:
                frame.flags.add(name)

    def stream_id(self) -> int:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:  # a new stream, most of the time
            stream_id = self.next_stream
            self.next_stream += 2
            return stream_id
        if roll < 0.8 and self.next_stream > 1:  # one used before
            return rng.randrange(1, self.next_stream, 2)
        return rng.choice([0, 2, 4, 2**31 - 1, rng.randrange(2**31)])

    # header blocks
    def header_block(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return rng.randbytes(rng.randrange(32))
        if roll < 0.55:
            fields = self.request()
        elif roll < 0.7:  # RFC 8441: a WebSocket CONNECT the endpoint refuses (bad version)
            fields = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                      (":path", "/ws"), (":authority", self.authority),
                      ("sec-websocket-version", rng.choice(["13", "99", ""]))]
        else:
            fields = [(rng.choice(NAMES), rng.choice(VALUES)) for _ in range(rng.randrange(6))]
        try:
            return self.encoder.encode(fields)
        except Exception:  # hpack refuses some of these names and values: send bytes instead
            return rng.randbytes(8)

    def request(self) -> list[tuple[str, str]]:
        rng = self.rng
        fields = [(":method", rng.choice(["GET", "GET", "POST", "HEAD", "PUT"])), (":scheme", "http"),
                  (":path", rng.choice(PATHS)), (":authority", self.authority)]
        if rng.random() < 0.3:
            fields.append(("content-length", str(rng.choice([0, 5, 100000, 10**12]))))
        if rng.random() < 0.2:
            fields.append(("expect", "100-continue"))
        return fields

    # mutations of a serialized frame
    def mutate(self, data: bytes) -> bytes:
        rng = self.rng
        data = bytearray(data)
        for _ in range(rng.randrange(1, 3)):
            if len(data) < 9:  # cut short by an earlier mutation: a header again
                data += rng.randbytes(9 - len(data))
            kind = rng.randrange(6)
            if kind == 0 and data:
                index = rng.randrange(len(data))
                data[index] ^= 1 << rng.randrange(8)
            elif kind == 1:
                data[0:3] = rng.randrange(2**24 if rng.random() < 0.2 else 64).to_bytes(3, "big")
            elif kind == 2:
                data[3] = rng.randrange(256)
            elif kind == 3:
                data[4] = rng.randrange(256)
            elif kind == 4:
                data[5:9] = rng.randrange(2**32).to_bytes(4, "big")
            else:
                del data[rng.randrange(len(data) + 1):]
                data += rng.randbytes(rng.randrange(4))
        return bytes(data)
