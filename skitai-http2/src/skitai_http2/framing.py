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

import h2.exceptions
from h2.errors import ErrorCodes

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADER_SIZE = 9
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
        error code the connection must end with) at the first one that breaks a rule."""
        position, end = 0, len(data)
        if self._skip:
            position = min(self._skip, end)
            self._skip -= position
        while position < end:
            if self._payload_left:
                step = min(self._payload_left, end - position)
                self._payload_left -= step
                position += step
                continue
            needed = HEADER_SIZE - len(self._header)
            self._header += data[position:position + needed]
            position += needed
            if len(self._header) < HEADER_SIZE:
                return
            header, self._header = self._header, b""
            length = int.from_bytes(header[:3], "big")
            self._check(header[3], header[4], length)
            self._payload_left = length

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
