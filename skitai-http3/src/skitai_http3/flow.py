"""What a peer may send: request-body credit that follows the app, and the number of streams.

Request-body flow control follows the app, not the network.
aioquic raises a stream's receive limit (MAX_STREAM_DATA, an absolute offset) by doubling it
whenever the peer has sent half of it, whether or not anybody read the data: an upload into an
app that reads slowly would pile up in memory. Here a stream's limit is what has arrived plus
one window, and it is not raised at all while the stream is held (its body buffer is full and
the app is not reading: `StreamedBody` paused it); releasing the hold lets the credit go out
with the next packet. So a request body costs at most the body buffer plus one window.

This replaces aioquic's `_write_stream_limits` on the connection instance, and `limit_streams`
sets the concurrent stream limit aioquic fixes at 128: internals, pinned by the plugin's aioquic
version bound.
"""
from __future__ import annotations

from aioquic.quic.connection import MAX_STREAM_DATA_FRAME_CAPACITY
from aioquic.quic.packet import QuicFrameType


def follow_consumption(quic, held: set[int], window: int) -> None:
    """Install the policy on `quic` (a server-side `QuicConnection`): streams in `held` get no
    credit; the others up to `received + window`, raised once half of the window is used."""

    def write_stream_limits(builder, space, stream) -> None:
        limit = stream.max_stream_data_local
        if not limit:
            return  # a stream of ours that receives nothing (unidirectional)
        if stream.stream_id not in held:
            wanted = stream.receiver.highest_offset + window
            if wanted - limit >= window // 2:
                stream.max_stream_data_local = limit = wanted
        if stream.max_stream_data_local_sent != limit:
            buf = builder.start_frame(QuicFrameType.MAX_STREAM_DATA, capacity=MAX_STREAM_DATA_FRAME_CAPACITY,
                                      handler=quic._on_max_stream_data_delivery, handler_args=(stream,))
            buf.push_uint_var(stream.stream_id)
            buf.push_uint_var(limit)
            stream.max_stream_data_local_sent = limit

    quic._write_stream_limits = write_stream_limits


def limit_streams(quic, count: int) -> None:
    """Announce `count` concurrent request streams (the initial MAX_STREAMS of the transport
    parameters, raised again as streams end, as aioquic does for its own 128)."""
    limit = quic._local_max_streams_bidi
    limit.value = limit.sent = count
