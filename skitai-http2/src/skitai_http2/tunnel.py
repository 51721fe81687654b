"""An HTTP/2 stream as a byte-stream transport: a CONNECT's tunnel (RFC 9113 8.5: TCP through a
proxy; RFC 8441: a WebSocket over an extended CONNECT).

`H2Exchange.open_tunnel` answers the CONNECT (`200`) and hands the protocol one of these:
what it writes leaves as DATA frames through the stream's outbox (flow-controlled like any
response, `pause_writing` above the high-water mark), the client's DATA frames arrive through
`data_received` with window credit held back while it pauses reading, the client's END_STREAM
is `eof_received`, and `close` ends the stream. A reset or the end of the connection is
`connection_lost`.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import H2ServerConnection
    from .exchange import H2Exchange


class StreamTunnel(asyncio.Transport):
    def __init__(self, conn: "H2ServerConnection", exchange: "H2Exchange", protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.conn = conn
        self.exchange = exchange
        self.protocol = protocol
        self.closing = False
        self.lost = False
        self.reading_paused = False
        self.unacked = 0

    # asyncio.Transport, for the protocol
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.conn.transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.closing or self.lost

    def write(self, data: bytes) -> None:
        if self.closing or self.lost or not data:
            return
        self.exchange.queue_tunnel_data(bytes(data))

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        """End our half of the stream once what was written has gone (END_STREAM)."""
        if not (self.closing or self.lost):
            self.closing = True
            self.conn.session.end(self.exchange.stream_id)
            self.conn.schedule_flush()

    def abort(self) -> None:
        if not self.lost:
            self.closing = True
            self.conn.abort_stream(self.exchange, cancelled=True)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            credit, self.unacked = self.unacked, 0
            self.conn.credit_stream(self.exchange, credit)

    def is_reading(self) -> bool:
        return not self.reading_paused

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol

    def get_write_buffer_size(self) -> int:
        return self.conn.session.pending(self.exchange.stream_id)

    # the connection's calls
    def start(self, early: list[tuple[bytes, int]]) -> None:
        self.protocol.connection_made(self)
        for data, length in early:
            self.feed(data, length)

    def feed(self, data: bytes, flow_controlled_length: int) -> None:
        if self.lost:
            return
        if self.reading_paused:
            self.unacked += flow_controlled_length
        else:
            self.conn.credit_stream(self.exchange, flow_controlled_length)
        if data:
            self.protocol.data_received(data)

    def eof(self) -> None:
        if not self.lost and not self.protocol.eof_received():
            self.close()

    def end(self, exc: Exception | None) -> None:
        if not self.lost:
            self.lost = self.closing = True
            self.protocol.connection_lost(exc)
