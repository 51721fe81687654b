"""A WebSocket after its handshake, sans-IO: bytes in, messages out, bytes to send.

wsproto parses frames, unmasks, checks UTF-8 and close codes, and joins a message's frames;
this layer adds what a server must decide: whole messages for the app (never bigger than
`max_message_size`: 1009), pongs for pings, and the closing handshake. A protocol violation
wsproto finds (1002, 1007) fails the connection: the close frame goes out and no more input is
looked at. `receive(None)` says the transport closed without a close frame (1006).
"""
from __future__ import annotations

from dataclasses import dataclass

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason

MERGE_BELOW = 64 * 1024  # parts of a fragmented message shorter than this are joined as it comes


@dataclass(slots=True)
class Message:
    data: str | bytes


@dataclass(slots=True)
class Closed:
    """The WebSocket is closed for input: the peer's close `code` (1005 when it gave none,
    1006 when the transport ended without a close frame), or the code we failed it with."""

    code: int
    reason: str


class WebSocketSession:
    def __init__(self, extensions: list[Extension] | None = None,
                 max_message_size: int = 1 << 20) -> None:
        self.ws = Connection(ConnectionType.SERVER, extensions or [])
        self.max_message_size = max_message_size
        self._parts: list = []
        self._size = 0
        self._out = bytearray()
        self.failed = False        # we ended it for a protocol error: drop the transport now
        self.input_closed = False  # a close frame (or the end) arrived, or we failed it

    @property
    def open(self) -> bool:
        return self.ws.state is ConnectionState.OPEN

    @property
    def closed(self) -> bool:
        """Both close frames went (or no more can): the transport may be closed."""
        return self.ws.state is ConnectionState.CLOSED or self.failed

    @property
    def close_sent(self) -> bool:
        return self.ws.state in (ConnectionState.LOCAL_CLOSING, ConnectionState.CLOSED)

    def receive(self, data: bytes | None) -> list[Message | Closed]:
        if self.input_closed:
            return []
        self.ws.receive_data(data)
        events: list[Message | Closed] = []
        for event in self.ws.events():
            kind = type(event)
            if kind is TextMessage or kind is BytesMessage:
                if self.close_sent:
                    continue  # we are closing: the app will not see it
                self._size += len(event.data)
                if self._size > self.max_message_size:
                    self._parts.clear()
                    events.append(self._fail(CloseReason.MESSAGE_TOO_BIG, "message too big", fatal=False))
                    continue
                if event.data:
                    self._add_part(event.data)
                if event.message_finished:
                    parts, self._parts, self._size = self._parts, [], 0
                    joiner = "" if kind is TextMessage else b""
                    events.append(Message(parts[0] if len(parts) == 1 else joiner.join(parts)))
            elif kind is Ping:
                if self.open:
                    self._out += self.ws.send(event.response())
            elif kind is CloseConnection:
                events.append(self._on_close(event))
                break
        return events

    def _add_part(self, data: str | bytes) -> None:
        """Keep a fragment of the message. Empty fragments are dropped, and a part shorter than
        `MERGE_BELOW` takes in each later part at least as long: a message sent in tiny
        fragments is held in a few parts (about log2 of MERGE_BELOW beyond one per 64 KiB), not
        in one object per frame (empty frames grew the list without limit, and 1-character
        ones made a message of the limit's size hold some 80 times as much memory)."""
        parts = self._parts
        parts.append(data)
        while len(parts) > 1 and len(parts[-2]) < MERGE_BELOW and len(parts[-1]) >= len(parts[-2]):
            last = parts.pop()
            parts[-1] += last

    def _on_close(self, event: CloseConnection) -> Closed:
        self.input_closed = True
        state = self.ws.state
        if state is ConnectionState.REMOTE_CLOSING:   # the peer closed first: answer in kind
            self._out += self.ws.send(event.response())
        elif state is not ConnectionState.CLOSED:     # wsproto refused the input (1002, 1007)
            return self._fail(event.code, event.reason or "", fatal=True)
        return Closed(int(event.code), event.reason or "")

    def _fail(self, code: int, reason: str, fatal: bool) -> Closed:
        if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._out += self.ws.send(CloseConnection(code=code, reason=reason))
        if fatal:  # nothing more is read; otherwise the peer's close frame still is
            self.input_closed = self.failed = True
        return Closed(int(code), reason)

    def send(self, message: str | bytes) -> bool:
        """Queue a message; False when the WebSocket no longer takes any."""
        if not self.open:
            return False
        if isinstance(message, str):
            self._out += self.ws.send(TextMessage(data=message))
        else:
            self._out += self.ws.send(BytesMessage(data=bytes(message)))
        return True

    def ping(self, payload: bytes = b"") -> None:
        if self.open:
            self._out += self.ws.send(Ping(payload=payload))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start (or answer) the closing handshake; no message goes out after it."""
        if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._out += self.ws.send(CloseConnection(code=code, reason=reason))

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data
