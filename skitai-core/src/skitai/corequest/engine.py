"""The corequest engine of one worker process: runs corequests on the worker's event loop.

An app's thread hands an awaitable over with one `loop.call_soon_threadsafe` and gets a
`concurrent.futures.Future` of its `Result` back; the loop thread never waits for anything.
The coroutine runs in a copy of the app thread's `contextvars` context (the loop callback that
starts it is scheduled from that thread, and `call_soon_threadsafe` captures the caller's
context), so context variables a request set are seen inside its corequests.

Why not `asyncio.run_coroutine_threadsafe`: it chains an asyncio Task to the concurrent Future
with done-callbacks, and asyncio runs a Task's done-callbacks one loop iteration after the Task
ends, so every corequest paid an extra turn of the loop (and the chaining's own bookkeeping)
before the app's thread was woken: about twice the cost of a bare thread-to-loop round trip in
bench/handoff.py. Here the coroutine resolves the concurrent Future itself as its last step, the
way `run_coroutine_threadsafe` would (`set_running_or_notify_cancel` first, so a Future cancelled
by a timeout or by `close()` stays cancelled), and a cancelled Future cancels the Task.
The engine keeps every running corequest referenced (asyncio holds tasks only weakly, and a
`returning()` task has no other owner) and cancels what is left when the server stops.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
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
        future: concurrent.futures.Future = concurrent.futures.Future()
        runner = _run(awaitable, map_error, future)
        try:
            if self.closed:
                raise RuntimeError("the worker is stopping")
            self.loop.call_soon_threadsafe(self._start, runner, future)
        except RuntimeError as error:  # closed here, or the loop is closed
            runner.close()
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            future.set_result(Result.failure(STA_UNSENT, error))
            return future
        with self._lock:
            self.started += 1
            self._running.add(future)
        future.add_done_callback(self._finished)
        return future

    def _start(self, runner: Coroutine, future: concurrent.futures.Future) -> None:
        """On the loop thread, in the caller's context: the Task, cancelled with its Future (which
        also keeps it referenced while the Future is in `_running`)."""
        task = self.loop.create_task(runner)

        def cancel_task(done: concurrent.futures.Future) -> None:  # any thread: a timeout, close()
            if done.cancelled():
                self.loop.call_soon_threadsafe(task.cancel)

        future.add_done_callback(cancel_task)

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


async def _run(awaitable: Awaitable, map_error: Callable[[Exception], Result],
               future: concurrent.futures.Future) -> None:
    """Await the operation and resolve `future` with its `Result` (or the error of `map_error`
    itself); a cancelled Task cancels `future`."""
    try:
        try:
            outcome = await awaitable
        except Exception as error:  # CancelledError is a BaseException: it propagates
            outcome = map_error(error)
        result = outcome if isinstance(outcome, Result) else Result(data=outcome)
    except asyncio.CancelledError:
        future.cancel()
        raise
    except BaseException as error:
        if future.set_running_or_notify_cancel():
            future.set_exception(error)
        if not isinstance(error, Exception):
            raise
    else:
        if future.set_running_or_notify_cancel():
            future.set_result(result)
