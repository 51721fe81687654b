"""The protocol a connection (HTTP/1.1) or a stream (HTTP/2) switches to for a WebSocket.

It joins the sans-IO `WebSocketSession` to the transport `Exchange.open_tunnel` hands over and
to the app's `WebSocket`, and keeps what needs the clock, checked by the server's
once-a-second sweep like every connection: the app's idle timeout (1001), a closing handshake
the client never finishes, and a client that stops reading. A graceful stop or reload closes
every WebSocket with 1001.
"""
from __future__ import annotations

import asyncio
import logging
import time

from .channel import WebSocket
from .session import Closed, Message, WebSocketSession

log = logging.getLogger("skitai.websocket")

CLOSE_TIMEOUT = 5.0  # seconds the client has to answer our close frame


class WebSocketConnection(asyncio.Protocol):
    def __init__(self, server, websocket: WebSocket, session: WebSocketSession) -> None:
        self.server = server
        self.websocket = websocket
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.client = ("", 0)
        self.closed = False
        self.last_input = time.monotonic()
        self.close_deadline: float | None = None
        self.write_paused_since: float | None = None
        self.write_timeout = server.config.request_timeout
        self.input_paused = False
        self._input_ended = False

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self.client} {self.websocket!r}>"

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.client = transport.get_extra_info("peername") or ("", 0)
        self.server.connection_opened(self)
        self.websocket.opened(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_input = time.monotonic()
        self._handle(self.session.receive(data))

    def eof_received(self) -> bool:
        self._handle(self.session.receive(None))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end_input(Closed(1006, "connection lost"))
        self.server.connection_closed(self)

    def pause_writing(self) -> None:
        self.write_paused_since = time.monotonic()
        self.websocket.writable.clear()

    def resume_writing(self) -> None:
        self.write_paused_since = None
        self.websocket.writable.set()

    # events
    def _handle(self, events: list) -> None:
        websocket = self.websocket
        for event in events:
            if type(event) is Message:
                websocket.deliver(event.data)
            else:
                self._end_input(event)
        self._flush()
        if self.session.closed:
            self._close_transport()

    def _end_input(self, closed: Closed) -> None:
        if not self._input_ended:
            self._input_ended = True
            log.debug("WebSocket from %s closed: %s %s", self.client, closed.code, closed.reason)
            self.websocket.input_ended(closed.code)
        if not self.session.closed and self.close_deadline is None:
            self.close_deadline = time.monotonic() + CLOSE_TIMEOUT

    # the app's calls (loop thread)
    def send_message(self, message: str | bytes) -> None:
        if not self.closed and self.session.send(message):
            self._flush()

    def close_websocket(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.session.close(code, reason)
        self._flush()
        if self.session.closed:
            self._close_transport()  # that answered the client's close
        elif self.close_deadline is None:
            self.close_deadline = time.monotonic() + CLOSE_TIMEOUT

    def pause_input(self) -> None:
        if not self.closed and not self.input_paused:
            self.input_paused = True
            self.transport.pause_reading()

    def resume_input(self) -> None:
        if not self.closed and self.input_paused:
            self.input_paused = False
            self.last_input = time.monotonic()
            self.transport.resume_reading()

    # timers (the server's sweep)
    def check_timeout(self, now: float) -> None:
        if self.closed:
            return
        if self.close_deadline is not None and now >= self.close_deadline:
            self.abort()  # the client never finished the closing handshake
        elif self.write_paused_since is not None and now - self.write_paused_since >= self.write_timeout:
            self.abort()  # the client stopped reading
        elif (self.websocket.timeout and self.session.open and not self.input_paused
              and now - self.last_input >= self.websocket.timeout):
            self.websocket.close(1001, "idle timeout")

    def shutdown(self) -> None:
        """Graceful stop or reload: the client is told the server is going away."""
        self.websocket.close(1001, "server shutting down")

    # output and closing
    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def _close_transport(self) -> None:
        """The closing handshake is over (or the connection failed): the server closes first
        (RFC 6455 7.1.1)."""
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()
