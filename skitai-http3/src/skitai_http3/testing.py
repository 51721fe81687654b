"""A small HTTP/3 client on aioquic's client API, for tests and benchmarks (curl from Debian has
no HTTP/3): one QUIC connection, any number of concurrent requests on it.

    async with h3_connect("127.0.0.1", port, cafile=certs.ca) as client:
        response = await client.request("GET", "/")
        response.status, response.headers, response.body, response.trailers

`request` sends a body given as bytes or as an async iterable of bytes (streamed as it comes,
waiting while aioquic holds more than `send_buffer` unsent bytes of the stream), and `sink`
takes the response body piece by piece instead of keeping it (a large download).
Pushed responses land in `client.promises` and `client.pushed` (by push ID; aioquic's client
allows 8 pushes). `run(coroutine_function, ...)` runs one such session from synchronous test code.
"""
from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any, AsyncIterable, Awaitable, Callable

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, BufferReadError
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived, PushPromiseReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, StreamDataReceived, StreamReset

SERVER_CONTROL_STREAM = 3   # the server's first unidirectional stream: its HTTP/3 control stream
GOAWAY = 0x7


class StreamResetError(ConnectionError):
    """The server reset the request's stream; `error_code` says why."""

    def __init__(self, error_code: int) -> None:
        super().__init__(f"stream reset with error code {error_code:#x}")
        self.error_code = error_code


@dataclass
class H3Response:
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[str, str]] | None = None
    received: int = 0            # body bytes, also when a sink took them
    interim: list[int] = field(default_factory=list)   # 1xx statuses before the final one

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class _Pending:
    def __init__(self, loop, sink) -> None:
        self.response = H3Response()
        self.chunks: list[bytes] = []
        self.sink = sink
        self.done = loop.create_future()


def _decode(headers) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


class H3Client(QuicConnectionProtocol):
    send_buffer = 1024 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.pending: dict[int, _Pending] = {}
        self.control = bytearray()   # what the server sent on its control stream
        self.terminated: ConnectionTerminated | None = None
        self.promises: dict[int, list[tuple[str, str]]] = {}   # push ID -> the promised request
        self.pushed: dict[int, H3Response] = {}                 # push ID -> its response so far

    @property
    def goaway_id(self) -> int | None:
        """The stream ID of the server's last GOAWAY (RFC 9114 5.2), None before one came
        (aioquic's H3Connection drops the frame, so the control stream is read here)."""
        buf = Buffer(data=bytes(self.control))
        found = None
        try:
            buf.pull_uint_var()  # the stream type
            while not buf.eof():
                frame_type, length = buf.pull_uint_var(), buf.pull_uint_var()
                payload = buf.pull_bytes(length)
                if frame_type == GOAWAY:
                    found = Buffer(data=payload).pull_uint_var()
        except BufferReadError:
            pass  # a frame still arriving
        return found

    # events
    def quic_event_received(self, event) -> None:
        if isinstance(event, StreamDataReceived) and event.stream_id == SERVER_CONTROL_STREAM:
            self.control += event.data
        if isinstance(event, ConnectionTerminated):
            self.terminated = event
            for stream_id in list(self.pending):
                self._fail(stream_id, ConnectionError(f"connection closed: {event.error_code:#x} "
                                                      f"{event.reason_phrase}"))
        elif isinstance(event, StreamReset) and event.stream_id in self.pending:
            self._fail(event.stream_id, StreamResetError(event.error_code))
        for h3_event in self.h3.handle_event(event):
            self._on_h3_event(h3_event)

    def _on_h3_event(self, event) -> None:
        if isinstance(event, PushPromiseReceived):
            self.promises[event.push_id] = _decode(event.headers)
            return
        push_id = getattr(event, "push_id", None)
        if push_id is not None:
            self._on_pushed(push_id, event)
            return
        pending = self.pending.get(getattr(event, "stream_id", None))
        if pending is None:
            return
        response = pending.response
        if isinstance(event, HeadersReceived):
            fields = _decode(event.headers)
            if response.status == 0 or response.status < 200:
                status = int(dict(fields)[":status"])
                if status < 200:
                    response.interim.append(status)
                else:
                    response.status = status
                    response.headers = [(name, value) for name, value in fields if name[0] != ":"]
            else:
                response.trailers = fields
        elif isinstance(event, DataReceived):
            response.received += len(event.data)
            if pending.sink is not None:
                pending.sink(event.data)
            else:
                pending.chunks.append(event.data)
        if getattr(event, "stream_ended", False):
            self.pending.pop(event.stream_id, None)
            response.body = b"".join(pending.chunks)
            if not pending.done.done():
                pending.done.set_result(response)

    def _on_pushed(self, push_id: int, event) -> None:
        response = self.pushed.setdefault(push_id, H3Response())
        if isinstance(event, HeadersReceived):
            fields = _decode(event.headers)
            response.status = int(dict(fields)[":status"])
            response.headers = [(name, value) for name, value in fields if name[0] != ":"]
        elif isinstance(event, DataReceived):
            response.body += event.data
            response.received += len(event.data)

    def _fail(self, stream_id: int, error: Exception) -> None:
        pending = self.pending.pop(stream_id, None)
        if pending is not None and not pending.done.done():
            pending.done.set_exception(error)

    # requests
    async def request(self, method: str, path: str, headers: list[tuple[str, str]] = (),
                      body: bytes | AsyncIterable[bytes] = b"", trailers: list[tuple[str, str]] | None = None,
                      authority: str = "localhost", timeout: float = 30.0,
                      sink: Callable[[bytes], None] | None = None,
                      on_stream: Callable[[int], None] | None = None) -> H3Response:
        """`on_stream(stream_id)` is called before anything is sent on the request's stream (a
        test shaping how aioquic frames it)."""
        stream_id = self._quic.get_next_available_stream_id()
        if on_stream is not None:
            self._quic._get_or_create_stream_for_send(stream_id)
            on_stream(stream_id)
        pending = self.pending[stream_id] = _Pending(self._loop, sink)
        head = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", authority.encode()),
                (b":path", path.encode()), *((name.lower().encode(), value.encode()) for name, value in headers)]
        streamed = not isinstance(body, (bytes, bytearray))
        ends_at_head = not streamed and not body and trailers is None
        self.h3.send_headers(stream_id, head, end_stream=ends_at_head)
        self.transmit()
        if streamed:
            async for piece in body:
                self.h3.send_data(stream_id, piece, end_stream=False)
                self.transmit()
                while self._unsent(stream_id) > self.send_buffer and not pending.done.done():
                    await asyncio.sleep(0.005)
                if pending.done.done():
                    break
        elif body:
            self.h3.send_data(stream_id, bytes(body), end_stream=trailers is None)
        if not pending.done.done() and (streamed or trailers is not None):
            if trailers is not None:
                self.h3.send_headers(stream_id, [(name.encode(), value.encode()) for name, value in trailers],
                                     end_stream=True)
            else:
                self.h3.send_data(stream_id, b"", end_stream=True)
        self.transmit()
        return await asyncio.wait_for(pending.done, timeout)

    def _unsent(self, stream_id: int) -> int:
        stream = self._quic._streams.get(stream_id)
        if stream is None:
            return 0
        return stream.sender._buffer_stop - stream.sender.highest_offset


@contextlib.asynccontextmanager
async def h3_connect(host: str, port: int, cafile: str | None = None, server_name: str = "localhost",
                     verify: bool = True, idle_timeout: float = 30.0, protocol: type = H3Client,
                     session_ticket_handler: Callable | None = None, session_ticket: Any = None):
    """An `H3Client` connected to `host:port` (TLS checked against `cafile`, or not at all with
    `verify=False`), closed on leaving. With a `session_ticket` (one `session_ticket_handler`
    received) the connection resumes that session and is yielded before the handshake ends, so
    the first requests go in 0-RTT when the server allows it
    (`client._quic.tls.early_data_accepted` says whether it did)."""
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=server_name,
                                      idle_timeout=idle_timeout)
    if cafile:
        configuration.load_verify_locations(cafile)
    if not verify:
        configuration.verify_mode = ssl.CERT_NONE
    configuration.session_ticket = session_ticket
    async with connect(host, port, configuration=configuration, create_protocol=protocol,
                       session_ticket_handler=session_ticket_handler,
                       wait_connected=session_ticket is None) as client:
        yield client


def run(session: Callable[..., Awaitable[Any]], *args: Any, timeout: float = 60.0) -> Any:
    """Run `session(*args)` on a new event loop, within `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(session(*args), timeout))
