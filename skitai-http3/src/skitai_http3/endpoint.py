"""The UDP endpoint of one worker: aioquic's `QuicServer` (it routes datagrams to connections by
connection ID, answers version negotiation, validates addresses with Retry when asked), made
on the socket the master bound, with the master's Retry token key, answering packets of unknown
connections with a stateless reset, and able to stop taking new connections while the ones it
holds finish (the graceful stop's first step, `server.add_acceptor`).
"""
from __future__ import annotations

import os

from aioquic.asyncio.server import QuicServer
from aioquic.buffer import Buffer
from aioquic.quic.packet import pull_quic_header
from aioquic.quic.retry import QuicRetryTokenHandler

from .steering import ConnectionIds

MIN_RESET_SIZE = 21   # RFC 9000 10.3: what a short-header packet is at least
MAX_RESET_SIZE = 43


class QuicEndpoint(QuicServer):
    """`retry_tokens`: the master's one `QuicRetryTokenHandler` (None: no Retry), so that the
    worker a retried Initial reaches can check a token another worker made."""

    def __init__(self, *, admission: "Admission", retry_tokens: QuicRetryTokenHandler | None = None,
                 connection_ids: ConnectionIds | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.admission = admission
        self._retry = retry_tokens
        self.connection_ids = connection_ids

    def datagram_received(self, data: bytes, addr) -> None:
        if data and not data[0] & 0x80 and self.connection_ids is not None:
            cid = data[1:1 + self._configuration.connection_id_length]
            if cid not in self._protocols:
                self._stateless_reset(cid, len(data), addr)
                return
        if not self.admission.open:
            try:
                header = pull_quic_header(Buffer(data=data),
                                          host_cid_length=self._configuration.connection_id_length)
            except ValueError:
                return
            if header.destination_cid not in self._protocols:
                return  # a new connection while stopping: not taken
        super().datagram_received(data, addr)

    def _stateless_reset(self, cid: bytes, size: int, addr) -> None:
        """A short-header packet for a connection this worker does not hold (its predecessor's,
        gone with a crash): a stateless reset (RFC 9000 10.3) ends it for the client now rather
        than at its idle timeout. Smaller than the packet that caused it, so two endpoints cannot
        keep resetting each other; none for a packet too small to hide one in."""
        length = min(size - 1, MAX_RESET_SIZE)
        if length < MIN_RESET_SIZE:
            return
        head = bytearray(os.urandom(length - 16))
        head[0] = 0x40 | (head[0] & 0x3F)   # a short header, fixed bit set
        self._transport.sendto(bytes(head) + self.connection_ids.reset_token(cid), addr)

    def shutdown(self) -> None:
        """Close every connection (CONNECTION_CLOSE) and the socket's transport in this worker."""
        for protocol in set(self._protocols.values()):
            try:
                protocol.close()
            except IndexError:
                pass  # aioquic: a connection that never had a usable datagram has no path to close on
        self._protocols.clear()
        if self._transport is not None:
            self._transport.close()


class Admission:
    """Whether the worker takes new connections: the acceptor the server closes when a graceful
    stop begins (`server.add_acceptor`). The endpoint then drops the first packets of new
    connections. The connections still in their handshake then (`handshaking`) are the
    worker's to finish: a reload's steering brings their packets here still, and no other
    worker could take them over; so closing hands each to the server (`hold_for_stop`), whose
    graceful stop waits for it as for the connections open before (see
    `H3ServerConnection.shutdown`)."""

    def __init__(self) -> None:
        self.open = True
        self.handshaking: set = set()

    def close(self) -> None:
        self.open = False
        for connection in list(self.handshaking):
            connection.hold_for_stop()
