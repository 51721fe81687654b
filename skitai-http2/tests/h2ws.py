"""A WebSocket over HTTP/2 (RFC 8441) from the client side: h2's client connection opens the
extended CONNECT, wsproto's client connection speaks WebSocket in the stream's DATA frames."""
from __future__ import annotations

import h2.events
import h2.settings
from h2peer import Client
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage


class H2WebSocket:
    def __init__(self, client: Client, path: str, extra=(), timeout: float = 10.0) -> None:
        self.client = client
        self.timeout = timeout
        conn = client.conn
        if not getattr(client, "settings_seen", False):
            client.until(lambda event: isinstance(event, h2.events.RemoteSettingsChanged))
            client.settings_seen = True
        self.connect_protocol = conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
        self.stream_id = conn.get_next_available_stream_id()
        conn.send_headers(self.stream_id, [
            (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":path", path),
            (":authority", f"127.0.0.1:{client.port}"), ("sec-websocket-version", "13"), *extra])
        client.flush()
        self.headers: dict = {}
        self.ws = Connection(ConnectionType.CLIENT)
        self.events: list = []
        self.ended = False
        self.reset = None
        self.body = b""
        self._pump(lambda: bool(self.headers) or self.ended)

    @property
    def status(self) -> int:
        return int(self.headers.get(":status", 0))

    @property
    def tunnel(self) -> bool:
        """A 200 without a body length: the stream now carries the WebSocket."""
        return self.status == 200 and "content-length" not in self.headers

    def _pump(self, done) -> None:
        """Read the connection until `done()`; stream events feed the WebSocket."""
        client, stream_id = self.client, self.stream_id
        while not done():
            for event in [e for e in client.backlog if getattr(e, "stream_id", None) == stream_id]:
                client.backlog.remove(event)
                if isinstance(event, h2.events.ResponseReceived):
                    self.headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    client.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    client.flush()
                    if self.tunnel and event.data:
                        self.ws.receive_data(event.data)
                        self.events.extend(self.ws.events())
                    else:
                        self.body += event.data
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended = True
                elif isinstance(event, h2.events.StreamReset):
                    self.ended, self.reset = True, event.error_code
            if done():
                return
            if client.closed:
                raise ConnectionError("the server closed the connection")
            client.until(lambda e: getattr(e, "stream_id", None) == stream_id
                         or isinstance(e, h2.events.ConnectionTerminated), self.timeout)

    def send(self, event) -> None:
        """Send a WebSocket event in as many DATA frames as the windows allow, waiting for
        the server's WINDOW_UPDATEs as a real client does."""
        client, conn = self.client, self.client.conn
        data = self.ws.send(event)
        while data:
            room = min(conn.local_flow_control_window(self.stream_id), conn.max_outbound_frame_size)
            if room <= 0:
                client.until(lambda e: isinstance(e, h2.events.WindowUpdated), self.timeout)
                continue
            conn.send_data(self.stream_id, data[:room])
            data = data[room:]
            client.flush()

    def send_text(self, text: str) -> None:
        self.send(TextMessage(text))

    def receive(self) -> str | bytes:
        """The next whole message (pongs and other control frames are kept in `events`)."""
        parts: list = []
        while True:
            self._pump(lambda: any(isinstance(e, (Message, CloseConnection)) for e in self.events)
                       or self.ended)
            while self.events:
                event = self.events.pop(0)
                if isinstance(event, (TextMessage, BytesMessage)):
                    parts.append(event.data)
                    if event.message_finished:
                        return ("" if isinstance(event, TextMessage) else b"").join(parts)
                elif isinstance(event, CloseConnection):
                    self.events.insert(0, event)
                    raise ConnectionError(f"closed with {event.code}")
            if self.ended:
                raise ConnectionError("the stream ended")

    def ping(self, payload: bytes) -> None:
        self.send(Ping(payload))

    def close(self, code: int = 1000) -> CloseConnection:
        """Our close frame, then the server's answer; the stream ends after it."""
        self.send(CloseConnection(code))
        return self.wait_close()

    def wait_close(self) -> CloseConnection:
        self._pump(lambda: any(isinstance(e, CloseConnection) for e in self.events) or self.ended)
        closes = [e for e in self.events if isinstance(e, CloseConnection)]
        if not closes:
            raise ConnectionError("the stream ended without a close frame")
        return closes[0]

    def wait_end(self) -> None:
        self._pump(lambda: self.ended)
