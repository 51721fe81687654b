"""Closing a connection without losing what was just written to it.

Closing a socket that still has unread input makes the kernel answer with a TCP reset, and a
reset can destroy the response (or GOAWAY) sent just before it. So a protocol that closes while
the peer may still be sending shuts its own side first, keeps discarding input for a moment,
then closes.
"""
from __future__ import annotations

import asyncio

LINGER_SECONDS = 2.0  # how long a closing connection keeps discarding input


def linger_then_close(transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
    """Shut our side now and close `LINGER_SECONDS` later; the protocol must ignore input
    meanwhile. A transport that cannot half-close (TLS) is closed at once."""
    if transport.can_write_eof():
        transport.write_eof()
        loop.call_later(LINGER_SECONDS, transport.close)
    else:
        transport.close()
