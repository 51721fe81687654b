"""permessage-deflate (RFC 7692) that never inflates past the message size limit.

wsproto's `PerMessageDeflate` inflates each received chunk in full: a few KiB of zeros
compressed can become gigabytes before any size check sees the message. This subclass asks
zlib for at most what the message may still grow by, and refuses the message (1009) once a
chunk would inflate beyond it, so memory stays bounded by the limit whatever the ratio.
It relies on the inbound state `PerMessageDeflate` keeps (`_inbound_compressed`,
`_inbound_is_compressible`, `_decompressor`), stable across wsproto 1.x.
"""
from __future__ import annotations

import zlib

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason


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
