"""The corequest engine of one worker process: runs corequests on the worker's event loop.

An app's thread hands an awaitable over with `asyncio.run_coroutine_threadsafe` and gets a
`concurrent.futures.Future` of its `Result` back; the loop thread never waits for anything.
The coroutine runs in a copy of the app thread's `contextvars` context (the loop callback that
starts it is scheduled from that thread, and `call_soon_threadsafe` captures the caller's
context), so context variables a request set are seen inside its corequests.
The engine keeps every running corequest referenced (asyncio holds tasks only weakly, and a
`returning()` task has no other owner) and cancels what is left when the server stops.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .cache import ResultCache
from .result import STA_UNSENT, Result

if TYPE_CHECKING:
    from .shared import SharedTable


class Engine:
    """Created on the loop thread when the server starts (`loop_thread` is that thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cache: ResultCache, shared: "SharedTable") -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.cache = cache
        self.shared = shared
        self.closed = False
        self.started = 0
        self._running: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, awaitable: Awaitable, map_error: Callable[[Exception], Result]) -> concurrent.futures.Future:
        """Schedule `awaitable` on the loop; the future resolves to a `Result` (exceptions are
        mapped by `map_error`). When the worker is stopping, the future is already resolved
        to an STA_UNSENT result and the awaitable never runs."""
        future: concurrent.futures.Future
        try:
            if self.closed:
                raise RuntimeError("the worker is stopping")
            future = asyncio.run_coroutine_threadsafe(_run(awaitable, map_error), self.loop)
        except RuntimeError as error:  # closed here, or the loop is closed
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            future = concurrent.futures.Future()
            future.set_result(Result.failure(STA_UNSENT, error))
            return future
        with self._lock:
            self.started += 1
            self._running.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: concurrent.futures.Future) -> None:
        with self._lock:
            self._running.discard(future)

    def close(self) -> None:
        """The server stops: refuse new corequests, cancel the running ones."""
        self.closed = True
        with self._lock:
            running = list(self._running)
        for future in running:
            future.cancel()


async def _run(awaitable: Awaitable, map_error: Callable[[Exception], Result]) -> Result:
    try:
        outcome = await awaitable
    except Exception as error:  # CancelledError is a BaseException: it propagates
        return map_error(error)
    return outcome if isinstance(outcome, Result) else Result(data=outcome)
