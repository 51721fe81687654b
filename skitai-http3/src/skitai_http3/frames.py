"""A look at frames a peer sends, before aioquic handles them: for STREAM frames, which epoch
one came in (0-RTT, `early`), which stream and how much (flood budgets, `floods`); for others
that they came (`floods`).

aioquic has no hook for this; its per-connection frame table (`__frame_handlers`) is wrapped on
the instance (internals, pinned by the plugin's aioquic bound). A STREAM frame's fields are read
from the buffer, which is then rewound for aioquic.
"""
from __future__ import annotations

from typing import Callable

from aioquic.buffer import BufferReadError

STREAM_FRAME_TYPES = range(0x08, 0x10)   # RFC 9000 19.8: bits OFF (0x04), LEN (0x02), FIN (0x01)

Observer = Callable[[object, int, int, bool], None]   # (epoch, stream id, length, fin)


def before_frames(quic, frame_types, before: Callable) -> None:
    """Call `before(context, frame_type, buf)` ahead of aioquic's handler for each frame of
    `frame_types` that `quic` (a `QuicConnection`) receives; `before` leaves `buf` where it
    found it."""
    handlers = quic._QuicConnection__frame_handlers
    for frame_type in frame_types:
        handle, epochs = handlers[frame_type]

        def handle_after(context, frame_type, buf, handle=handle):
            before(context, frame_type, buf)
            handle(context, frame_type, buf)

        handlers[frame_type] = (handle_after, epochs)


def observe_stream_frames(quic, observer: Observer) -> None:
    """Call `observer(epoch, stream_id, length, fin)` for every STREAM frame `quic` receives,
    before aioquic handles it. A frame too short to read is left to aioquic, which rejects it."""

    def read(context, frame_type, buf) -> None:
        start = buf.tell()
        try:
            stream_id = buf.pull_uint_var()
            if frame_type & 4:
                buf.pull_uint_var()
            length = buf.pull_uint_var() if frame_type & 2 else buf.capacity - buf.tell()
        except BufferReadError:
            return
        finally:
            buf.seek(start)
        observer(context.epoch, stream_id, length, bool(frame_type & 1))

    before_frames(quic, STREAM_FRAME_TYPES, read)
