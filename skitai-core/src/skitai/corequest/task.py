"""`Task`: one corequest as the app's thread sees it.

The operation already runs on the worker's event loop when the app gets the Task (it started on
creation); the app's thread goes on and waits only when it asks for the outcome (`dispatch`,
`wait`, `fetch`, `one`, `commit`), with a timeout. `returning(response)` lets the request end
while the operation runs on. `Mask(data)` is a Task that is finished from the start.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from .result import STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, Result

if TYPE_CHECKING:
    from .cache import ResultCache
    from .handoff import Handoff

log = logging.getLogger("skitai.corequest")

DEFAULT_TIMEOUT = 10.0
DEFAULT_CACHE_IF = (200,)


class LoopBlockedError(RuntimeError):
    """Waiting for a corequest on the event loop thread itself (`threads=0`) would never end."""


class Task:
    """A running corequest.

    `future` is the `Handoff` of its coroutine on the worker loop (see `handoff.py`; any object
    with `concurrent.futures.Future`'s methods will do), resolving to a `Result`. `key` is its
    result-cache key (None: not cacheable), `issued_at` the `time.time()` it started, `timeout`
    the wait used when a method gets `timeout=None`, `filter` a function applied to the data of
    a successful result, `loop_thread` the ident of the loop's thread (waiting there raises
    `LoopBlockedError` instead of hanging), `loop` the worker's event loop (where `returning()`
    times the operation out).
    """

    def __init__(self, future: "Handoff | None", *, result: Result | None = None,
                 timeout: float | None = None, cache: "ResultCache | None" = None, key: Hashable | None = None,
                 issued_at: float | None = None, filter: Callable[[Any], Any] | None = None,
                 loop_thread: int | None = None, meta: dict | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._future = future
        self._result = result
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self._cache = cache
        self.key = key
        self.issued_at = time.time() if issued_at is None else issued_at
        self._filter = filter
        self._loop_thread = loop_thread
        self._loop = loop
        self._lock = threading.Lock()
        self.meta = {} if meta is None else meta

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'done' if self.done() else 'running'}>"

    def done(self) -> bool:
        return self._result is not None or (self._future is not None and self._future.done())

    # waiting
    def _outcome(self, timeout: float | None) -> Result:
        if self._result is not None:
            return self._result
        with self._lock:  # two threads waiting on one task settle it once
            if self._result is None:
                self._result = self._settle(self._wait(self.timeout if timeout is None else timeout))
        return self._result

    def _wait(self, timeout: float) -> Result:
        future = self._future
        if not future.done() and threading.get_ident() == self._loop_thread:
            raise LoopBlockedError(
                "a corequest cannot be waited on in an app that runs on the event loop thread "
                "(skitai.run(threads=0)): run the app with threads >= 1, or end the request with "
                "task.returning(response) and let the corequest finish on its own")
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as error:
            future.cancel()
            return Result.failure(STA_TIMEOUT, error)
        except concurrent.futures.CancelledError as error:
            return Result.failure(STA_REQFAIL, error, "Cancelled")
        except Exception as error:  # a driver's error mapping itself failed
            return Result.failure(STA_REQFAIL, error)

    def _settle(self, result: Result) -> Result:
        if self._filter is not None and result.status == STA_NORMAL and not result.cached:
            try:
                return result.copy(data=self._filter(result.data))
            except Exception as error:
                return Result.failure(STA_REQFAIL, error)
        return result

    # the corequest protocol
    def dispatch(self, timeout: float | None = None, cache: float | None = None,
                 cache_if: tuple[int, ...] = DEFAULT_CACHE_IF) -> Result:
        """The `Result`; with `cache=seconds`, a completed result whose status code is in
        `cache_if` is kept in the worker's result cache for that long."""
        result = self._outcome(timeout)
        if (cache and self.key is not None and self._cache is not None and not result.cached
                and result.status == STA_NORMAL and result.status_code in cache_if):
            self._cache.put(self.key, result, cache, self.issued_at)
        return result

    def wait(self, timeout: float | None = None) -> Result:
        """Wait until the operation ends; the `Result` tells how it went."""
        return self._outcome(timeout)

    def fetch(self, timeout: float | None = None, cache: float | None = None,
              cache_if: tuple[int, ...] = DEFAULT_CACHE_IF) -> Any:
        """The data, or raise: the operation's exception, or an `HTTPError` (504 for a timeout,
        502 for a network error, the status code of an unsuccessful answer)."""
        return self.dispatch(timeout, cache, cache_if).fetch()

    def one(self, timeout: float | None = None, cache: float | None = None,
            cache_if: tuple[int, ...] = DEFAULT_CACHE_IF) -> Any:
        """The only record of the data; HTTP 410 when there is none or more than one."""
        return self.dispatch(timeout, cache, cache_if).one()

    def commit(self, timeout: float | None = None) -> None:
        """Wait for the operation and raise if it failed."""
        self.wait(timeout).commit()

    def returning(self, response: Any) -> Any:
        """`response`, at once: the request ends while the operation runs on, for at most the
        task's `timeout`, then it is cancelled as a wait that timed out cancels it (a database
        statement is cancelled on its server, a call's connection closed): no one waits for it
        any more, and it must not hold its resources for ever. A failure is logged, since no one
        will look at the result."""
        if self._future is not None and self._result is None:
            self._future.add_done_callback(_log_failure)
            if self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._loop.call_later, self.timeout, self._future.cancel)
                except RuntimeError:  # the loop is closed: the worker has stopped, and the operation with it
                    pass
        return response


def _log_failure(future: "Handoff") -> None:
    if future.cancelled():
        log.warning("a background corequest was cancelled (it ran past its timeout, or the worker stopped)")
        return
    result = future.result()
    if not result.ok:
        log.warning("a background corequest failed: %r", result, exc_info=result.expt)


class Mask(Task):
    """A finished Task holding `data`, for code that wants one interface for computed values and
    corequests: `was.Mask(1).fetch() == 1`."""

    def __init__(self, data: Any = None, status_code: int = 200, reason: str = "OK", meta: dict | None = None) -> None:
        super().__init__(None, result=Result(STA_NORMAL, status_code, reason, data), meta=meta)
