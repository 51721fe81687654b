"""Request bodies: written by the protocol on the loop thread, read by the app on any thread.

Two shapes, one reader interface (`read`, `readline`, `readlines`, iteration), which is also the
WSGI `wsgi.input` contract, plus `await body.read_async(size)` for a handler that runs on the
event loop thread (a relay streaming the body elsewhere, see `Exchange.drain`), and `trailers`:
the request's trailer fields (an HTTP/1.1 chunked body's trailer section, HTTP/2 trailing
HEADERS) as (lower-case name, value) pairs, set by the protocol when the body ends, so complete
once a read returned b"" (empty until then, and for a body without them). Fields RFC 9110 6.5.1
keeps out of trailers never get here: the protocols refuse such a request
(`skitai.fields.FORBIDDEN_TRAILER_FIELDS`). WSGI has no place for them; loop-thread handlers
(a proxy) pass them on:

* `StreamedBody` hands data to a reader thread as it arrives and pauses the connection's reading
  while the unread part is above a high-water mark, so a slow app never makes the server hold an
  unbounded body in memory.
* `SpooledBody` collects the whole body before the handler runs (for handlers that must not block,
  such as WSGI apps run on the loop thread with `threads=0`); beyond 1 MiB it spills to a
  temporary file.
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from typing import Callable, Iterator

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024


class ClientDisconnected(OSError):
    """The client went away before the request body was complete."""


class BodyTimeout(TimeoutError):
    """No body data arrived within the request timeout."""


class _Reader:
    """readline/readlines/iteration on top of a subclass's `read` and `_peek_line`."""

    trailers: list[tuple[str, str]] = []  # replaced, never appended to: see `finish`

    async def read_async(self, size: int = -1) -> bytes:
        """On the loop thread: up to `size` bytes (all there is for -1), b"" at the end. A body
        that is complete (empty, spooled) is read at once; `StreamedBody` waits for data."""
        return self.read(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line


class EmptyBody(_Reader):
    """The body of a request that has none (the common GET)."""

    def __init__(self) -> None:
        # instance values, not class-level ones: CPython 3.11 reads a class-level value through
        # an instance on its slow path, and protocols read these on every bodiless request
        self.complete = True
        self.received = 0

    def fail(self, error: BaseException) -> None:
        pass  # nothing to read, nothing to fail

    def read(self, size: int = -1) -> bytes:
        return b""

    def readline(self, size: int = -1) -> bytes:
        return b""


EMPTY_BODY = EmptyBody()


class DiscardedBody:
    """The rest of a body whose response is already sent: counted and dropped, so a small unread
    body does not cost the keep-alive connection. Past `limit` bytes `on_overflow` is called."""

    complete = False

    def __init__(self, received: int, limit: int, on_overflow: Callable[[], None]) -> None:
        self.received = received
        self._limit = received + limit
        self._on_overflow = on_overflow

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self._limit:
            self._on_overflow()

    def finish(self, trailers: list[tuple[str, str]] | None = None) -> None:
        self.complete = True  # nobody reads this body's trailers either

    def fail(self, error: BaseException) -> None:
        pass  # nobody reads this body any more


class StreamedBody(_Reader):
    def __init__(self, pause: Callable[[], None], resume_threadsafe: Callable[[], None],
                 timeout: float, on_first_read: Callable[[], None] | None = None) -> None:
        self._buffer = bytearray()
        self._cond = threading.Condition(threading.Lock())
        self._pause = pause
        self._resume_threadsafe = resume_threadsafe
        self._paused = False
        self._timeout = timeout
        self._on_first_read = on_first_read
        self._error: BaseException | None = None
        self._wanted = 0  # bytes a waiting reader asked for: buffering up to that is its choice
        self._waiter: asyncio.Future | None = None  # a `read_async` waiting on the loop thread
        self.complete = False
        self.received = 0

    # producer side: loop thread
    def feed(self, data: bytes) -> None:
        with self._cond:
            self._buffer += data
            self.received += len(data)
            self._cond.notify()
            if len(self._buffer) > max(HIGH_WATER, self._wanted):
                # Paused again on every feed over the mark, not only on the first: a resume the
                # reader queued for the loop before this pause may run after it, and would leave
                # the protocol taking input (a socket read, window credit) while this body stays
                # marked paused and never asks again. The protocols' pauses are idempotent.
                self._paused = True
                self._pause()
        self._wake()

    def finish(self, trailers: list[tuple[str, str]] | None = None) -> None:
        with self._cond:
            if trailers:
                self.trailers = trailers
            self.complete = True
            self._cond.notify_all()
        self._wake()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            if not self.complete:
                self._error = error
            self._cond.notify_all()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # consumer side: any thread
    def _wait(self, ready: Callable[[], bool], wanted: int) -> None:
        if self._on_first_read is not None:
            callback, self._on_first_read = self._on_first_read, None
            callback()
        while not ready():
            if self._error is not None:
                raise self._error
            if self.complete:
                return
            self._wanted = wanted
            if self._paused and len(self._buffer) < wanted:
                self._paused = False
                self._resume_threadsafe()
            try:
                if not self._cond.wait(self._timeout):
                    raise BodyTimeout(f"no request body data within {self._timeout} seconds")
            finally:
                self._wanted = 0

    async def read_async(self, size: int = -1) -> bytes:
        """On the loop thread: up to `size` bytes (all that is buffered for -1) as soon as some
        arrived, b"" at the end of the body. While the caller does not read, the unread part
        stays under the high-water mark because the protocol stops taking input (HTTP/1.1
        pauses the socket, HTTP/2 withholds the stream's window credit). A lost connection or
        reset stream raises `ClientDisconnected` at once, even with data still buffered; no
        data within the request timeout raises `BodyTimeout`."""
        if self._on_first_read is not None:
            callback, self._on_first_read = self._on_first_read, None
            callback()
        while True:
            if self._error is not None:
                raise self._error
            if self._buffer or self.complete:
                break
            if self._paused:
                self._paused = False
                self._resume_threadsafe()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, self._timeout)
            except asyncio.TimeoutError:
                raise BodyTimeout(f"no request body data within {self._timeout} seconds") from None
            finally:
                self._waiter = None
        with self._cond:
            return self._take(len(self._buffer) if size is None or size < 0 else size)

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self._paused and len(self._buffer) < LOW_WATER:
            self._paused = False
            self._resume_threadsafe()
        return data

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            if size is None or size < 0:
                self._wait(lambda: False, sys.maxsize)  # the app asked for all of it
                return self._take(len(self._buffer))
            self._wait(lambda: len(self._buffer) >= size, size)
            return self._take(size)

    def readline(self, size: int = -1) -> bytes:
        with self._cond:
            def has_line() -> bool:
                return b"\n" in self._buffer or (0 <= size <= len(self._buffer))
            self._wait(has_line, sys.maxsize if size is None or size < 0 else size)
            end = self._buffer.find(b"\n")
            end = len(self._buffer) if end < 0 else end + 1
            if size is not None and size >= 0:
                end = min(end, size)
            return self._take(end)


class SpooledBody(_Reader):
    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        self.complete = False
        self.received = 0

    def feed(self, data: bytes) -> None:
        self._file.write(data)
        self.received += len(data)

    def finish(self, trailers: list[tuple[str, str]] | None = None) -> None:
        if trailers:
            self.trailers = trailers
        self.complete = True
        self._file.seek(0)

    def fail(self, error: BaseException) -> None:
        self._file.close()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(-1 if size is None else size)

    def readline(self, size: int = -1) -> bytes:
        return self._file.readline(-1 if size is None else size)

    def close(self) -> None:
        self._file.close()
