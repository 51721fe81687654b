"""An HTTP/2 peer over a raw socket for the tests: h2's client connection for well-formed
traffic, hand-built frames (hyperframe, hpack) for what no real client sends."""
from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.events
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def split_frames(buffer: bytes) -> tuple[list[Frame], bytes]:
    """The complete frames at the start of `buffer`, and the bytes left over."""
    frames = []
    while len(buffer) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(buffer[:9]))
        if len(buffer) < 9 + length:
            break
        frame.parse_body(memoryview(buffer[9:9 + length]))
        buffer = buffer[9 + length:]
        frames.append(frame)
    return frames, buffer


def request_headers(port: int, path: str = "/", method: str = "GET", extra=()) -> list[tuple[str, str]]:
    return [(":method", method), (":path", path), (":scheme", "http"),
            (":authority", f"127.0.0.1:{port}"), *extra]


class Client:
    """h2's client state machine on a socket; `until(predicate)` reads events."""

    def __init__(self, port: int, settings: dict | None = None, timeout: float = 10.0) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                         header_encoding="utf-8"))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.closed = False
        self.backlog: list = []  # events read but not yet taken by `response`
        self.trailers: dict[int, dict] = {}  # stream id -> trailer fields `response` received

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str = "/", method: str = "GET", body: bytes | None = None,
                extra=()) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, request_headers(self.port, path, method, extra),
                               end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=True)
        self.flush()
        return stream_id

    def until(self, predicate, timeout: float | None = None) -> list:
        """Events up to the read that brought one satisfying `predicate`, or until the
        server closes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = []
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            if not data:
                self.closed = True
                return seen
            events = self.conn.receive_data(data)
            seen.extend(events)
            self.backlog.extend(events)
            self.flush()
            if any(predicate(event) for event in events):
                return seen
        raise TimeoutError(f"no matching event within the timeout; saw {seen!r}")

    def response(self, stream_id: int, ack: bool = True) -> tuple[dict, bytes]:
        """Headers and body of a stream's response, crediting received data when `ack`."""
        headers, body = {}, bytearray()
        while True:
            for event in [e for e in self.backlog if getattr(e, "stream_id", None) == stream_id]:
                self.backlog.remove(event)
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)
                elif isinstance(event, h2.events.TrailersReceived):
                    self.trailers[stream_id] = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    if ack:
                        self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                        self.flush()
                elif isinstance(event, h2.events.StreamReset):
                    headers["reset"] = event.error_code
                    return headers, bytes(body)
                elif isinstance(event, h2.events.StreamEnded):
                    return headers, bytes(body)
            self.until(lambda e: getattr(e, "stream_id", None) == stream_id)

    def close(self) -> None:
        self.sock.close()


class RawPeer:
    """Hand-built frames: the attacks a well-behaved client library refuses to send."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.encoder = Encoder()
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())
        self._buffer = b""

    def send(self, *frames: Frame) -> None:
        """Send frames; the server may already have closed under a flood, which is the point."""
        try:
            self.sock.sendall(b"".join(frame.serialize() for frame in frames))
        except OSError:
            pass

    def headers(self, stream_id: int, headers, end_stream: bool = True,
                end_headers: bool = True) -> HeadersFrame:
        frame = HeadersFrame(stream_id, self.encoder.encode(headers))
        for flag in (["END_STREAM"] if end_stream else []) + (["END_HEADERS"] if end_headers else []):
            frame.flags.add(flag)
        return frame

    def request(self, stream_id: int, path: str = "/", end_stream: bool = True, extra=()) -> HeadersFrame:
        return self.headers(stream_id, request_headers(self.port, path, extra=extra), end_stream)

    @staticmethod
    def reset(stream_id: int, code: int = 8) -> RstStreamFrame:
        return RstStreamFrame(stream_id, error_code=code)

    @staticmethod
    def ping(index: int) -> PingFrame:
        return PingFrame(0, opaque_data=index.to_bytes(8, "big"))

    @staticmethod
    def continuation(stream_id: int, data: bytes) -> ContinuationFrame:
        return ContinuationFrame(stream_id, data)

    def frames(self, timeout: float = 10.0):
        """Frames from the server until it closes the connection (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames, self._buffer = split_frames(self._buffer)
            yield from frames
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return
            except ConnectionResetError:
                return
            if not data:
                return
            self._buffer += data

    def goaway(self, timeout: float = 10.0) -> GoAwayFrame | None:
        for frame in self.frames(timeout):
            if isinstance(frame, GoAwayFrame):
                return frame
        return None

    def close(self) -> None:
        self.sock.close()
