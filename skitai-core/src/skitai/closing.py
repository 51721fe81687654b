"""Closing a connection without losing what was just written to it.

Closing a socket that still has unread input makes the kernel answer with a TCP reset, and a
reset can destroy the response (or GOAWAY) sent just before it. So a protocol that closes while
the peer may still be sending shuts its own side first, keeps discarding input for a moment,
then closes.

A graceful stop waits for exchanges, not for sockets: a connection that has closed its side
and written everything out has nothing left to deliver, so the stop ends its linger (or a TLS
shutdown waiting for the close_notify of an idle client that is not reading) at once.
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


def closing_done(connection) -> bool:
    """`connection` (a protocol registered with the server) has closed its side (`closed`) and
    its transport holds no unwritten bytes: the rest of its closing only makes a stop wait."""
    if not connection.closed:
        return False
    transport = connection.transport
    try:
        return transport.get_write_buffer_size() == 0
    except RuntimeError:  # a transport already torn down has nothing left to write
        return True
