"""The UDP endpoint of one worker: aioquic's `QuicServer` (it routes datagrams to connections by
connection ID, answers version negotiation, validates addresses with Retry when asked), made
on the socket the master bound, with the master's Retry token key, and able to stop taking new
connections while the ones it
holds finish (the graceful stop's first step, `server.add_acceptor`).
"""
from __future__ import annotations

from aioquic.asyncio.server import QuicServer
from aioquic.buffer import Buffer
from aioquic.quic.packet import pull_quic_header
from aioquic.quic.retry import QuicRetryTokenHandler


class QuicEndpoint(QuicServer):
    """`retry_tokens`: the master's one `QuicRetryTokenHandler` (None: no Retry), so that the
    worker a retried Initial reaches can check a token another worker made."""

    accepting = True

    def __init__(self, *, retry_tokens: QuicRetryTokenHandler | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._retry = retry_tokens

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.accepting:
            try:
                header = pull_quic_header(Buffer(data=data),
                                          host_cid_length=self._configuration.connection_id_length)
            except ValueError:
                return
            if header.destination_cid not in self._protocols:
                return  # a new connection while stopping: not taken
        super().datagram_received(data, addr)

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


class StopAccepting:
    """The acceptor the server closes when a graceful stop begins."""

    def __init__(self, endpoint: QuicEndpoint) -> None:
        self.endpoint = endpoint

    def close(self) -> None:
        self.endpoint.accepting = False
