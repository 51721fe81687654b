"""permessage-deflate (RFC 7692) that never inflates past the message size limit.

wsproto's `PerMessageDeflate` inflates each received chunk in full: a few KiB of zeros
compressed can become gigabytes before any size check sees the message. This subclass asks
zlib for at most what the message may still grow by, and refuses the message (1009) once a
chunk would inflate beyond it, so memory stays bounded by the limit whatever the ratio.

It also makes the compressor itself: wsproto's uses zlib's default memLevel (8, a hash table of
32 Ki entries) whatever window the client asked for, and zlib rescans that whole table each
time its window slides. With `server_max_window_bits=9` (a 512-byte window, which any client
may ask for) that is 64 entries per byte sent, and deflating became 3 to 5 times slower than
with the full window (Autobahn's 13.3, 13.5 and 13.7). The table here stays within 8 times
the window: memLevel = window bits - 4, at most 8.

It relies on the state `PerMessageDeflate` keeps (`_inbound_compressed`,
`_inbound_is_compressible`, `_decompressor`, `_compressor`), stable across wsproto 1.x.
"""
from __future__ import annotations

import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits


def mem_level(window_bits: int) -> int:
    """zlib's memLevel for a deflate window of `window_bits`: a hash table of
    2 ** (memLevel + 7) entries, no more than 8 times the window, and zlib's default 8 at most."""
    return max(1, min(8, window_bits - 4))


class BoundedPerMessageDeflate(PerMessageDeflate):
    def __init__(self, max_message_size: int) -> None:
        super().__init__()
        self.max_message_size = max_message_size
        self._inflated = 0  # bytes the current message has inflated to so far

    def frame_inbound_payload_data(self, proto, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        room = self.max_message_size - self._inflated
        try:
            out = self._decompressor.decompress(bytes(data), room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self.max_message_size:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto, fin: bool) -> bytes | CloseReason | None:
        if not fin:
            return None
        self._inflated = 0
        return super().frame_inbound_complete(proto, fin)

    def frame_outbound(self, proto, opcode: Opcode, rsv: RsvBits, data: bytes,
                       fin: bool) -> tuple[RsvBits, bytes]:
        if self._compressor is None and opcode in (Opcode.TEXT, Opcode.BINARY):
            bits = self.client_max_window_bits if proto.client else self.server_max_window_bits
            self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                                -bits, mem_level(bits))
        return super().frame_outbound(proto, opcode, rsv, data, fin)
