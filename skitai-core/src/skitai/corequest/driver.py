"""`Driver`: the base a plugin implements to add a kind of corequest to `was`.

A driver turns a call like `was.echo("hi")` into a running `Task`. The base does the common
part: the result cache (`use_cache`, `rm_cache`, the cache key), scheduling on the worker
loop, and mapping exceptions to result statuses. A plugin writes `execute()` and registers an
instance from its `skitai_register_services` hook::

    class Echo(Driver):
        async def execute(self, value, delay=0.0):   # runs on the worker's event loop
            await asyncio.sleep(delay)
            return value                              # -> Result(STA_NORMAL, 200, "OK", value)

    @hookimpl
    def skitai_register_services(was):
        was.add_service("echo", Echo(was))

`execute()` is called in the app's thread and must return an awaitable, which the loop runs:
an `async def` does exactly that. It may return plain data (a 200 result), a `Result` of its own
making (an upstream's status, headers), or raise (see `map_error`). Work that runs off the loop
(a thread or process pool) returns the pool's `concurrent.futures.Future` instead: the Task
waits on it directly, without a hop through the loop, and its outcome is mapped the same way. A driver whose calls do
not map one-to-one to tasks (a database object with several methods) calls `start()` itself.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import socket
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

from ..errors import HTTPError
from .result import STA_NETERR, STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, Result
from .task import Task

if TYPE_CHECKING:
    from .was import Was


class Driver:
    """One kind of corequest; `timeout` is the default wait of its tasks (seconds)."""

    timeout: float | None = None

    def __init__(self, was: "Was") -> None:
        self.was = was
        self.engine = was.engine

    def __call__(self, *args: Any, use_cache: Any = True, rm_cache: Any = None, **kwargs: Any) -> Task:
        """Start `execute(*args, **kwargs)`; `use_cache` and `rm_cache` as for `start()`."""
        return self.start(functools.partial(self.execute, *args, **kwargs), self.cache_key(*args, **kwargs),
                          use_cache=use_cache, rm_cache=rm_cache)

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """The operation, run on the worker loop: return data or a `Result`, or raise."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute()")

    def cache_key(self, *args: Any, **kwargs: Any) -> Hashable | None:
        """What identifies a call's result in the result cache (None: never cached). By default
        the arguments themselves, when they are hashable."""
        key = (args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def map_error(self, error: Exception) -> Result:
        """The `Result` for an exception raised by the operation: timeouts are STA_TIMEOUT,
        unreachable peers and broken connections STA_NETERR, an `HTTPError` a completed answer
        with its status code, anything else STA_REQFAIL. `fetch()` raises the exception again."""
        if isinstance(error, HTTPError):
            return Result(STA_NORMAL, error.code, error.status[4:], None, (), error)
        if isinstance(error, (TimeoutError, asyncio.TimeoutError)):  # distinct before Python 3.11
            return Result.failure(STA_TIMEOUT, error)
        if isinstance(error, (ConnectionError, socket.gaierror)):
            return Result.failure(STA_NETERR, error)
        return Result.failure(STA_REQFAIL, error)

    def start(self, execute: Callable[[], Awaitable | concurrent.futures.Future], key: Hashable | None = None, *,
              use_cache: Any = True, rm_cache: Any = None, timeout: float | None = None,
              filter: Callable[[Any], Any] | None = None, meta: dict | None = None) -> Task:
        """Start one operation and return its Task.

        `execute()` creates the awaitable; it is not called when the result cache answers.
        `key` is the call's cache key. `use_cache`: True (a fresh cached result is fine), False
        (run anyway), a timestamp (cached results older than it are stale), or cache key
        names, meaning their `was.getlu(...)`. `rm_cache`: cache key names this operation
        changes; they are marked changed (`was.setlu`) and the cache is not used.
        """
        engine = self.engine
        timeout = self.timeout if timeout is None else timeout
        if rm_cache:
            engine.shared.setlu(*_names(rm_cache))
            use_cache = False
        if key is not None:
            key = (type(self), key)
            if isinstance(use_cache, (str, list, tuple)):
                use_cache = engine.shared.getlu(*_names(use_cache))
            cached = engine.cache.get(key, use_cache)
            if cached is not None:
                return Task(None, result=cached, timeout=timeout, meta=meta)
        issued_at = time.time()
        try:
            awaitable = execute()
        except Exception as error:  # the operation could not even be set up
            return Task(None, result=self.map_error(error), timeout=timeout, meta=meta)
        return Task(engine.submit(awaitable, self.map_error), timeout=timeout, cache=engine.cache, key=key,
                    issued_at=issued_at, filter=filter, loop_thread=engine.loop_thread, meta=meta,
                    loop=engine.loop)


def _names(value: str | list | tuple) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)
