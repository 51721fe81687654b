"""Frame headers checked in the raw input, before h2 parses the frames.

h2 reads frames with hyperframe and leaves two rules of RFC 9113 to its user:

* the client preface ends with a SETTINGS frame (3.4): anything else after the preface string
  (a PING, a HEADERS, HTTP/1.1 text that happens to follow a correct preface) is a connection
  error PROTOCOL_ERROR, found on the first 9 bytes rather than after a whole bogus frame;
* a SETTINGS ACK with a payload is a FRAME_SIZE_ERROR (6.5); hyperframe calls it malformed data,
  which h2 answers with PROTOCOL_ERROR;
* a frame longer than SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR (4.2), which h2 finds only
  once the whole frame has arrived: a header announcing 16 MiB made the connection buffer up to
  16 MiB (or wait for it forever), found by the frame fuzzer.

`FrameHeaderCheck` follows the frame boundaries of the input (the 9-byte headers and the
lengths they give, payloads skipped unread) from the bytes alone, so it relies on nothing of
h2 but the preface it expects in front of the frames.
"""
from __future__ import annotations

import struct

import h2.exceptions
from h2.errors import ErrorCodes

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# A frame header as three fields: the 24-bit length and the type in one 32-bit word
# (`length << 8 | type`), the flags, the stream id; read in place here, packed in place by
# `frames` where every response goes
FRAME_HEADER = struct.Struct("!LBL")
HEADER_SIZE = FRAME_HEADER.size
SETTINGS = 0x4
ACK = 0x1


class FrameSizeError(h2.exceptions.ProtocolError):
    error_code = ErrorCodes.FRAME_SIZE_ERROR


class FrameHeaderCheck:
    def __init__(self, max_frame_size: int) -> None:
        self.max_frame_size = max_frame_size
        self._skip = len(PREFACE)   # preface bytes still to pass (h2 checks their value)
        self._header = b""          # the start of a frame header cut by the end of a read
        self._payload_left = 0      # bytes of the current frame's payload still to pass
        self._first = True

    def feed(self, data: bytes) -> None:
        """Check the frame headers that `data` completes; raises h2's ProtocolError (with the
        error code the connection must end with) at the first one that breaks a rule.

        Each header is read in place (`unpack_from`), and only a SETTINGS frame, an oversized
        one or the first one is looked at further: this runs for every frame of every read."""
        position = 0
        if self._skip:
            position = min(self._skip, len(data))
            self._skip -= position
        if self._header:  # a frame header cut by the end of the last read (rare): joined
            data, position, self._header = self._header + data, 0, b""
        end = len(data)
        position += self._payload_left
        max_frame_size = self.max_frame_size
        while position + HEADER_SIZE <= end:
            length_and_kind, flags, _ = FRAME_HEADER.unpack_from(data, position)
            kind, length = length_and_kind & 0xFF, length_and_kind >> 8
            if kind == SETTINGS or length > max_frame_size or self._first:
                self._check(kind, flags, length)
            position += HEADER_SIZE + length
        if position > end:  # inside a payload: skip the rest of it in the next reads
            self._payload_left = position - end
        else:
            self._payload_left = 0
            self._header = data[position:]

    def _check(self, kind: int, flags: int, length: int) -> None:
        is_ack = kind == SETTINGS and flags & ACK
        if self._first:
            self._first = False
            if kind != SETTINGS or is_ack:
                raise h2.exceptions.ProtocolError("the client preface does not end with SETTINGS")
        elif is_ack and length:
            raise FrameSizeError("SETTINGS ACK with a payload")
        if length > self.max_frame_size:
            raise FrameSizeError(f"a frame of {length} bytes, more than SETTINGS_MAX_FRAME_SIZE")
