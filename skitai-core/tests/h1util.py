"""Driving an H1Connection with bytes and no socket: a recording transport and a loop that is
never run, except to flush callbacks scheduled by the connection (`settle`)."""
from __future__ import annotations

import asyncio

from skitai.config import ServerConfig
from skitai.http1.connection import H1Connection
from skitai.kernel import Kernel
from skitai.server import Server

# Loop passes `settle` runs: a threads=0 app answers in the loop's next callback, and each
# answer of a pipeline starts the next request's (MAX_PIPELINED at most), plus their follow-ups.
SETTLE_PASSES = 40


def settle(loop: asyncio.AbstractEventLoop) -> None:
    """Run the callbacks the connection scheduled, and the ones they schedule in turn."""
    async def passes() -> None:
        for _ in range(SETTLE_PASSES):
            await asyncio.sleep(0)

    loop.run_until_complete(passes())


class RecordingTransport(asyncio.Transport):
    def __init__(self, protocol=None) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True
        self.protocol = protocol

    def write(self, data) -> None:
        assert not self.closed, "write after close"
        self.data += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)


class Harness:
    """One connection of a threads=0 server whose apps run on the loop thread, so responses
    are written before `feed` returns (it settles the loop)."""

    def __init__(self, *mounts, handlers=(), **settings) -> None:
        config = ServerConfig(**{"threads": 0, "access_log": False, **settings})
        self.kernel = Kernel(config, entry_points=False)
        for point, obj in mounts:
            self.kernel.mount(point, obj)
        for handler in handlers:
            self.kernel.handlers.add(handler, priority=1)
        self.loop = asyncio.new_event_loop()
        self.server = Server(self.kernel)
        self.server.loop = self.loop
        for handler in self.server.handlers:
            handler.bind(self.server)
        self.connection = H1Connection(self.server)
        self.transport = RecordingTransport(self.connection)
        self.connection.connection_made(self.transport)

    def feed(self, data: bytes) -> bytes:
        start = len(self.transport.data)
        self.connection.data_received(data)
        settle(self.loop)
        return bytes(self.transport.data[start:])

    def close(self) -> None:
        self.loop.close()


def split_responses(data: bytes) -> list[tuple[bytes, dict, bytes]]:
    """Parse back-to-back HTTP/1.1 responses with Content-Length or chunked bodies (in linear
    time: relayed bodies run to tens of megabytes)."""
    responses = []
    at = 0
    while at < len(data):
        end = data.find(b"\r\n\r\n", at)
        end = len(data) if end < 0 else end
        lines = data[at:end].split(b"\r\n")
        at = end + 4
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        status = lines[0]
        if status.split()[1].startswith(b"1"):
            responses.append((status, headers, b""))
            continue
        if "content-length" in headers:
            size = int(headers["content-length"])
            body, at = data[at:at + size], at + size
        elif headers.get("transfer-encoding") == "chunked":
            pieces = []
            while True:
                line_end = data.index(b"\r\n", at)
                size = int(data[at:line_end].split(b";")[0], 16)
                at = line_end + 2
                if size == 0:
                    at = data.index(b"\r\n", at) + 2
                    break
                pieces.append(data[at:at + size])
                at += size + 2
            body = b"".join(pieces)
        else:
            body, at = data[at:], len(data)
        responses.append((status, headers, body))
    return responses
