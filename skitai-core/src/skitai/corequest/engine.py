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
bench/handoff.py. Here the coroutine settles its `Handoff` itself as its last step (see
`handoff.py` for why a Handoff rather than a `concurrent.futures.Future`), a cancelled Handoff
(a timeout, `close()`) cancels the Task, and a cancelled Task cancels the Handoff.
The engine keeps every running corequest referenced (asyncio holds tasks only weakly, and a
`returning()` task has no other owner) in a set that only the loop thread changes, so the app's
thread takes no lock for it, and cancels what is left when the server stops.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING

from .cache import ResultCache
from .handoff import Adopted, Handoff
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
        self.started = 0  # corequests started on the loop; like `_running`, changed there only
        self._running: set[Handoff] = set()

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, awaitable: Awaitable | concurrent.futures.Future,
               map_error: Callable[[Exception], Result]) -> Handoff | Adopted:
        """Schedule `awaitable` on the loop; the Handoff resolves to a `Result` (exceptions are
        mapped by `map_error`). When the worker is stopping, it is already resolved to an
        STA_UNSENT result and the awaitable never runs.

        A `concurrent.futures.Future` (work a pool already runs) is not awaited on the loop: it
        is adopted as it is (see `Adopted`) and the app's thread waits on it directly."""
        if isinstance(awaitable, concurrent.futures.Future):
            return self._adopt(awaitable, map_error)
        handoff = Handoff(self.loop)
        runner = self._run(awaitable, map_error, handoff)  # made here: the loop is the busier thread
        try:
            if self.closed:
                raise RuntimeError("the worker is stopping")
            self.loop.call_soon_threadsafe(self._start, runner, awaitable, handoff)
        except RuntimeError as error:  # closed here, or the loop is closed
            _discard(runner, awaitable)
            handoff.set_result(Result.failure(STA_UNSENT, error))
        return handoff

    def _adopt(self, future: concurrent.futures.Future, map_error: Callable[[Exception], Result]) -> Handoff | Adopted:
        if self.closed:  # its pool is shut down or about to be: the work is dropped if still queued
            future.cancel()
            handoff = Handoff(self.loop)
            handoff.set_result(Result.failure(STA_UNSENT, RuntimeError("the worker is stopping")))
            return handoff
        return Adopted(future, map_error)

    def _start(self, runner: Coroutine, awaitable: Awaitable, handoff: Handoff) -> None:
        """On the loop thread, in the caller's context (`call_soon_threadsafe` captured it)."""
        if self.closed or handoff.done():  # stopped, or cancelled (a zero timeout), since the submission
            _discard(runner, awaitable)
            handoff.set_result(Result.failure(STA_UNSENT, RuntimeError("the worker is stopping")))
            return
        self.started += 1
        task = self.loop.create_task(runner)
        if handoff.started(task):
            self._running.add(handoff)
        else:  # cancelled by another thread in the meantime: the task's first step ends it
            task.cancel()
            _discard(None, awaitable)

    async def _run(self, awaitable: Awaitable, map_error: Callable[[Exception], Result], handoff: Handoff) -> None:
        """Await the operation and settle `handoff` with its `Result` (or the error of
        `map_error` itself); a cancelled Task cancels `handoff`."""
        try:
            try:
                outcome = await awaitable
            except Exception as error:  # CancelledError is a BaseException: it propagates
                outcome = map_error(error)
            result = outcome if isinstance(outcome, Result) else Result(data=outcome)
        except asyncio.CancelledError:
            handoff.cancelled_by_task()
            raise
        except BaseException as error:
            handoff.set_exception(error)
            if not isinstance(error, Exception):
                raise
        else:
            handoff.set_result(result)
        finally:
            self._running.discard(handoff)

    def close(self) -> None:
        """The server stops: refuse new corequests, cancel the running ones (their waiters are
        woken at once, their Tasks cancelled on the loop)."""
        self.closed = True
        for handoff in list(self._running):
            handoff.cancel()


def _discard(runner: Coroutine | None, awaitable: Awaitable) -> None:
    """The operation will never run: its coroutines are closed (no 'never awaited' warnings)."""
    if runner is not None:
        runner.close()
    if inspect.iscoroutine(awaitable):
        awaitable.close()
