"""Protocol choice on TLS listeners by the ALPN id the handshake negotiated."""
from __future__ import annotations

import asyncio


class ALPNSelector(asyncio.Protocol):
    """The first protocol of every TLS connection.

    asyncio calls `connection_made` only once the handshake is complete, so the negotiated id is
    known there and no application data has arrived yet: the selector creates the protocol
    registered for that id (the default one when none was negotiated) and hands the transport
    over. Protocols therefore never know whether a selector stood in front of them.
    """

    def __init__(self, server) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        alpn = transport.get_extra_info("ssl_object").selected_alpn_protocol()
        protocol = self.server.kernel.protocols.for_alpn(alpn).factory(self.server)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
