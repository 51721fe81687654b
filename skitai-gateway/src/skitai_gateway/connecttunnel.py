"""A CONNECT tunnel: the client's side (the transport `exchange.open_tunnel` gives: a TCP or TLS
connection over HTTP/1.1, a stream over HTTP/2) and a TCP connection to the destination, bytes
relayed both ways.

Back-pressure: when one side's transport cannot take more (`pause_writing`), the other side
stops being read until it can, so a fast sender and a slow reader never fill the proxy's memory.
An end of input on one side (FIN, END_STREAM) is passed on as an end of output on the other
(`write_eof`, or closing an HTTP/2 stream's half); the tunnel closes once both directions ended
or either connection is lost. A tunnel with no byte either way for `idle_timeout` seconds is
closed (`skitai.set_proxy_keep_alive(tunnel=...)`): a client that opens tunnels and sends
nothing cannot hold the proxy's connections for ever.
"""
from __future__ import annotations

import asyncio
from typing import Any


class Tunnel:
    def __init__(self, loop: Any, idle_timeout: float) -> None:
        self.loop = loop
        self.idle_timeout = idle_timeout
        self.client = _Side(self, "client")
        self.upstream = _Side(self, "upstream")
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.last_activity = loop.time()
        self.closed = False
        self.done = loop.create_future()  # set when the tunnel has closed: tests and logs wait on it
        self._timer = loop.call_later(idle_timeout, self._check_idle)

    def touch(self) -> None:
        self.last_activity = self.loop.time()

    def _check_idle(self) -> None:
        if self.closed:
            return
        idle = self.loop.time() - self.last_activity
        if idle >= self.idle_timeout:
            self.close(reason="idle")
        else:
            self._timer = self.loop.call_later(self.idle_timeout - idle, self._check_idle)

    def close(self, reason: str = "") -> None:
        """Close both sides (what was written still goes out first)."""
        if self.closed:
            return
        self.closed = True
        self._timer.cancel()
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()
        if not self.done.done():
            self.done.set_result(reason)


class _Side(asyncio.Protocol):
    """One end of the tunnel: what it receives is written to the other end."""

    def __init__(self, tunnel: Tunnel, name: str) -> None:
        self.tunnel = tunnel
        self.name = name
        self.peer: _Side | None = None
        self.transport: Any = None
        self.early: list[bytes] = []  # received before the other side was connected
        self.ended = False            # its input ended (FIN / END_STREAM)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.tunnel.closed:
            transport.close()
            return
        peer = self.peer
        if peer.early:  # the other side spoke first: its bytes go out now, it is read again
            for data in peer.early:
                transport.write(data)
            peer.early.clear()
            peer.transport.resume_reading()
        if peer.ended:
            self._end_output()

    def data_received(self, data: bytes) -> None:
        tunnel = self.tunnel
        if tunnel.closed:
            return
        tunnel.touch()
        peer = self.peer.transport
        if peer is None:
            self.early.append(data)
            self.transport.pause_reading()
        else:
            peer.write(data)

    def eof_received(self) -> bool:
        self.ended = True
        if self.peer.ended:
            self.tunnel.close(reason="done")
            return False
        if self.peer.transport is not None:
            self.peer._end_output()
        return True  # keep this side open: the other direction goes on

    def _end_output(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()  # an HTTP/2 stream's half, or TLS: no half-close to give

    def pause_writing(self) -> None:
        peer = self.peer.transport
        if peer is not None and not peer.is_closing():
            peer.pause_reading()

    def resume_writing(self) -> None:
        peer = self.peer.transport
        if peer is not None and not peer.is_closing():
            peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.close(reason=f"{self.name} closed")


async def connect(loop: Any, targets: list[tuple], timeout: float, protocol: asyncio.Protocol) -> Any:
    """Connect `protocol` to the first of `targets` ((family, sockaddr) pairs, already checked:
    no name is resolved again here) that answers within `timeout` seconds in all; the transport.
    Raises the last `OSError`, or `TimeoutError`."""
    deadline = loop.time() + timeout
    error: Exception = TimeoutError("no address to connect to")
    for family, sockaddr in targets:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"no connection within {timeout:g} s")
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: protocol, host=sockaddr[0], port=sockaddr[1], family=family),
                remaining)
            return transport
        except asyncio.TimeoutError:
            raise TimeoutError(f"no connection within {timeout:g} s") from None
        except OSError as exc:
            error = exc
    raise error
