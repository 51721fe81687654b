"""A byte tunnel between a client's exchange and a member's connection, after the member
switched protocols (a WebSocket relayed by the reverse proxy).

Back-pressure both ways: when one side's transport is full the other side stops being read.
The tunnel closes when either side closes, or when no byte went either way for the proxy's
tunnel timeout (`skitai.set_proxy_keep_alive(tunnel=...)`).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from .upstreamconn import UpstreamConnection


class Splice:
    def __init__(self, member: UpstreamConnection, idle_timeout: float) -> None:
        self.member = member
        self.idle_timeout = idle_timeout
        self.front = _Front(self)
        self.front_transport: Any = None
        self._held = [member.rest] if member.rest else []  # the member's bytes before the client side is ready
        self._last = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        member.tunnel = _Back(self)
        if member.lost:
            self._held.append(b"")

    # the client side
    def front_made(self, transport: Any) -> None:
        self.front_transport = transport
        held, self._held = self._held, []
        for data in held:
            if data:
                transport.write(data)
        if self.member.lost:
            self.close()
            return
        self._schedule()

    def from_front(self, data: bytes) -> None:
        self._last = time.monotonic()
        if not self.member.lost:
            self.member.transport.write(data)

    def from_member(self, data: bytes) -> None:
        self._last = time.monotonic()
        if self.front_transport is None:
            self._held.append(data)
        else:
            self.front_transport.write(data)

    def front_full(self, full: bool) -> None:
        transport = self.member.transport
        if transport is not None and not self.member.lost:
            transport.pause_reading() if full else transport.resume_reading()

    def member_full(self, full: bool) -> None:
        transport = self.front_transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading() if full else transport.resume_reading()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + self.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        if self._closed:
            return
        if time.monotonic() - self._last >= self.idle_timeout:
            self.close()
        else:
            self._schedule()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.member.close()
        if self.front_transport is not None:
            self.front_transport.close()


class _Front(asyncio.Protocol):
    """What the client-side transport talks to."""

    def __init__(self, splice: Splice) -> None:
        self.splice = splice

    def connection_made(self, transport: Any) -> None:
        self.splice.front_made(transport)

    def data_received(self, data: bytes) -> None:
        self.splice.from_front(data)

    def eof_received(self) -> bool:
        self.splice.close()
        return False

    def pause_writing(self) -> None:
        self.splice.front_full(True)

    def resume_writing(self) -> None:
        self.splice.front_full(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.splice.close()


class _Back(asyncio.Protocol):
    """What the member's connection hands its events to once it carries the tunnel."""

    def __init__(self, splice: Splice) -> None:
        self.splice = splice

    def data_received(self, data: bytes) -> None:
        self.splice.from_member(data)

    def eof_received(self) -> bool:
        self.splice.close()
        return False

    def pause_writing(self) -> None:
        self.splice.member_full(True)

    def resume_writing(self) -> None:
        self.splice.member_full(False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.splice.front_transport is None:
            self.splice._held.append(b"")
        else:
            self.splice.close()
