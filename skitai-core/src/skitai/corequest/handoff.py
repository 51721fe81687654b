"""`Handoff`: the one-shot slot through which a corequest's `Result` goes from the loop to the
app's thread.

Why not `concurrent.futures.Future`: every corequest crosses from the loop back to a waiting
thread once, and the Future pays for generality there: a `Condition` (pure Python) around every
state change, a new lock allocated per `wait()`, `notify_all` walking the waiters, and its own
`set_running_or_notify_cancel` step. Here the waiting itself is one lock, taken when the slot is
made and released by whoever settles it (the loop with the result, or any thread cancelling), so
a waiter blocks in one `Lock.acquire(timeout)` and is woken by one `release()`; a second small
lock keeps settling, cancelling and the callbacks consistent between threads.

A cancelled slot cancels its asyncio Task (scheduled on the loop, from whatever thread cancels)
and a Task cancelled on the loop cancels its slot, as `asyncio.run_coroutine_threadsafe` chains
them. The methods are those of `concurrent.futures.Future` that corequests use, with the same
exceptions (`concurrent.futures.TimeoutError`, `CancelledError`), so a Task cannot tell them
apart.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any

from .result import Result

log = logging.getLogger("skitai.corequest")

_PENDING, _DONE, _CANCELLED = 0, 1, 2


class Handoff:
    __slots__ = ("_ready", "_guard", "_state", "_value", "_error", "_callbacks", "_loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()  # held until the slot is settled: waiting is acquiring it
        self._guard = threading.Lock()
        self._state = _PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[["Handoff"], Any]] | None = None
        self._loop = loop
        self.task: asyncio.Task | None = None  # set on the loop thread when the operation starts

    def __repr__(self) -> str:
        return f"<Handoff {('pending', 'done', 'cancelled')[self._state]}>"

    # the concurrent.futures.Future methods a Task uses
    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self, timeout: float | None = None) -> Any:
        """The value, once settled; raises `concurrent.futures.TimeoutError` after `timeout`
        seconds (None: no limit), `CancelledError` for a cancelled slot, or the error it holds."""
        if self._state == _PENDING:
            if timeout is None:
                ready = self._ready.acquire()
            elif timeout > 0:
                ready = self._ready.acquire(True, timeout)
            else:  # zero or negative: a look without waiting, as concurrent.futures does
                ready = self._ready.acquire(False)
            if not ready:
                raise concurrent.futures.TimeoutError()
            self._ready.release()  # let any other waiter through as well
        if self._state == _CANCELLED:
            raise concurrent.futures.CancelledError()
        if self._error is not None:
            raise self._error
        return self._value

    def add_done_callback(self, callback: Callable[["Handoff"], Any]) -> None:
        """`callback(self)` once settled: at once if it is, else on the thread that settles it."""
        with self._guard:
            if self._state == _PENDING:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self)

    def cancel(self) -> bool:
        """Cancel from any thread (a timeout, the server stopping): waiters are woken at once and
        the operation's Task, if it started, is cancelled on the loop. False if already settled."""
        if not self._settle(_CANCELLED, None, None):
            return False
        task = self.task  # None: not started yet, and `started()` will see the cancellation
        if task is not None and not task.done():
            try:
                self._loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop is closed: its tasks will never run again anyway
                pass
        return True

    # the loop's side
    def started(self, task: asyncio.Task) -> bool:
        """The operation's Task now runs; False (and the caller cancels the task) when the slot
        was cancelled before it could start."""
        with self._guard:
            self.task = task
            return self._state == _PENDING

    def set_result(self, value: Any) -> bool:
        return self._settle(_DONE, value, None)

    def set_exception(self, error: BaseException) -> bool:
        return self._settle(_DONE, None, error)

    def cancelled_by_task(self) -> bool:
        """The Task was cancelled on the loop: settle as cancelled without cancelling it again."""
        return self._settle(_CANCELLED, None, None)

    def _settle(self, state: int, value: Any, error: BaseException | None) -> bool:
        with self._guard:
            if self._state != _PENDING:
                return False
            self._value, self._error = value, error
            self._state = state
            callbacks, self._callbacks = self._callbacks, None
        self._ready.release()
        if callbacks:
            for callback in callbacks:
                try:
                    callback(self)
                except Exception:  # as concurrent.futures does: the settling goes on
                    log.exception("a corequest's done-callback failed")
        return True


class Adopted:
    """Work already running off the loop (a thread or process pool's `concurrent.futures.Future`)
    as a corequest: its outcome is mapped to a `Result` when the app's thread reads it, so the
    pool thread wakes the app's thread directly, without a hop through the loop (two thread
    crossings less per call than awaiting the future on the loop)."""

    __slots__ = ("future", "map_error")

    def __init__(self, future: concurrent.futures.Future, map_error: Callable[[Exception], Any]) -> None:
        self.future = future
        self.map_error = map_error

    def __repr__(self) -> str:
        return f"<Adopted {self.future!r}>"

    def done(self) -> bool:
        return self.future.done()

    def cancelled(self) -> bool:
        return self.future.cancelled()

    def cancel(self) -> bool:
        """Only work still queued can be cancelled (a running thread cannot be stopped)."""
        return self.future.cancel()

    def result(self, timeout: float | None = None) -> Result:
        """The work's value as a `Result`, or `map_error` of its exception. `exception()` rather than
        `result()` is what waits: the `TimeoutError` it raises is the wait's own, never one the
        work raised (that one is returned, and mapped)."""
        error = self.future.exception(timeout)
        if error is None:
            value = self.future.result()
            return value if isinstance(value, Result) else Result(data=value)
        if not isinstance(error, Exception):  # SystemExit and the like are not results
            raise error
        return self.map_error(error)

    def add_done_callback(self, callback: Callable[["Adopted"], Any]) -> None:
        self.future.add_done_callback(lambda _: callback(self))
