"""How a connection's recent streams closed, one byte per stream id: h2's `_closed_streams`.

h2 remembers how each closed stream ended (`StreamClosedBy`, or None when it was closed
implicitly) so that a late frame on a stream it reset costs a stream error and not the whole
connection. Its record is an OrderedDict of int keys, about 110 bytes a stream (the int
included): at 4096 streams that is some 450 KiB per long-lived connection, which under
`h2load -c10 -m10` made the HTTP/2 worker 4.5 MB larger than the HTTP/1.1 one.

Stream ids only grow on a connection (RFC 9113 5.1.1), so the recent ones are a window of
consecutive ids, and one byte each says how it closed: the same record in at most
2 * `span` bytes. What falls out of the window is forgotten, as h2's size limit forgets:
a frame on it is then a connection error (RFC 9113 5.4.1 lets us limit how long frames on a
reset stream are ignored).
"""
from __future__ import annotations

from h2.stream import StreamClosedBy

# byte 0: nothing recorded for that id; then None (closed implicitly) and each StreamClosedBy,
# found by identity (`tuple.index`: an Enum hashes in Python)
_CLOSED_BY = (None, None, *StreamClosedBy)
GROW_AHEAD = 64


class ClosedStreams:
    """The mapping h2 uses for `_closed_streams` (set, `in`, get), for the `span` stream ids
    below the newest one recorded; older ids are forgotten."""

    def __init__(self, span: int) -> None:
        self.span = span
        self._base = 0           # the stream id of `_codes[0]`
        self._codes = bytearray()

    def __setitem__(self, stream_id: int, closed_by: StreamClosedBy | None) -> None:
        offset = stream_id - self._base
        codes = self._codes
        if offset >= len(codes):
            if offset >= 2 * self.span:  # slide, once per `span` ids: keep the last `span` of them
                base = stream_id - self.span + 1
                del codes[:base - self._base]
                self._base, offset = base, self.span - 1
            # grown a few dozen ids ahead (zeros: nothing recorded), not by a call per stream
            codes.extend(bytes(max(offset + 1, min(offset + GROW_AHEAD, 2 * self.span)) - len(codes)))
        elif offset < 0:
            return  # older than the window: already forgotten
        codes[offset] = _CLOSED_BY.index(closed_by, 1)

    def _code(self, stream_id: int) -> int:
        offset = stream_id - self._base
        return self._codes[offset] if 0 <= offset < len(self._codes) else 0

    def __contains__(self, stream_id: object) -> bool:
        return isinstance(stream_id, int) and self._code(stream_id) != 0

    def __getitem__(self, stream_id: int) -> StreamClosedBy | None:
        code = self._code(stream_id)
        if not code:
            raise KeyError(stream_id)
        return _CLOSED_BY[code]

    def __len__(self) -> int:
        """The streams recorded (the window's ids that closed)."""
        return len(self._codes) - self._codes.count(0)
