"""Background work as corequests: `was.Thread`, `was.Process`, `was.Subprocess`.

Each returns a Task like any other corequest (`fetch`, `dispatch`, `returning` ...). The pools
are created on first use, so a worker that never asks for one never pays for it: threads in a
`ThreadPoolExecutor`, processes in a loky executor (one process per CPU), replaced when a crashed process
broke it; loky tells a crash apart and spawns processes without the hazards of forking a
threaded server. Submitting
happens in the app's thread (it may pickle arguments or start processes), and the pool's future
is the Task's own (see `Engine.submit`): the loop is not involved at all, so the app's thread is
woken by the pool's thread directly. An exception raised by the target is the task's failure
(STA_REQFAIL, re-raised by `fetch()`), whatever its type.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import subprocess
import threading
from typing import Any, Callable

from .driver import Driver
from .result import STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, Result
from .task import Task


class _PoolDriver(Driver):
    """`was.X(target, *args, filter=None, **kwargs)`: `target(*args, **kwargs)` in a pool."""

    def __init__(self, was) -> None:
        super().__init__(was)
        self._lock = threading.Lock()

    def __call__(self, target: Callable[..., Any], *args: Any, filter: Callable[[Any], Any] | None = None,
                 **kwargs: Any) -> Task:
        if not callable(target):
            raise TypeError(f"{type(self).__name__} needs a callable target, not {target!r}")
        return self.start(functools.partial(self.execute, target, *args, **kwargs),
                          self.cache_key(target, *args, **kwargs), filter=filter)

    def execute(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return self.executor().submit(target, *args, **kwargs)

    def map_error(self, error: Exception) -> Result:
        return Result.failure(STA_REQFAIL, error)

    def executor(self) -> concurrent.futures.Executor:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class ThreadDriver(_PoolDriver):
    """Threads for blocking work next to the WSGI pool (`concurrent.futures`' default size)."""

    def __init__(self, was) -> None:
        super().__init__(was)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="skitai-was-thread")
            return self._executor

    def execute(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """`target` runs in a copy of the caller's `contextvars` context (called on the app's
        thread), so what the request set (a tracing span, a logging field) is seen there too."""
        context = contextvars.copy_context()
        return self.executor().submit(context.run, target, *args, **kwargs)

    @property
    def size(self) -> int:
        return 0 if self._executor is None else self._executor._max_workers

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


class ProcessDriver(_PoolDriver):
    """Processes for CPU-bound work: one loky `ProcessPoolExecutor` per worker, one process per
    CPU, started on first use. Targets and arguments travel with cloudpickle, so functions
    defined in the served script work too. A crashed process breaks the executor (its tasks
    fail with `TerminatedWorkerError`); the next submit replaces it. (loky's own
    `get_reusable_executor` keeps one executor per *thread*, which would give every WSGI thread
    its own pool, hence this one executor per driver.)"""

    def __init__(self, was) -> None:
        super().__init__(was)
        self.max_workers = os.cpu_count() or 1
        self._executor = None

    @property
    def size(self) -> int:
        return 0 if self._executor is None else self.max_workers

    def executor(self, replacing=None):
        import loky  # only workers that use processes import it

        with self._lock:
            if self._executor is None or self._executor is replacing:
                if replacing is not None:
                    replacing.shutdown(wait=False, kill_workers=True)
                self._executor = loky.ProcessPoolExecutor(max_workers=self.max_workers)
            return self._executor

    def execute(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        from loky.process_executor import BrokenProcessPool

        executor = self.executor()
        try:
            future = executor.submit(target, *args, **kwargs)
        except BrokenProcessPool:  # a process crashed earlier: a new pool takes over
            future = self.executor(replacing=executor).submit(target, *args, **kwargs)
        return future

    def close(self) -> None:
        if self._executor is not None:
            # wait=True: the kill happens before this process exits (a worker leaves with os._exit)
            self._executor.shutdown(wait=True, kill_workers=True)
            self._executor = None  # released now rather than at the exit


class SubprocessDriver(Driver):
    """`was.Subprocess(command, timeout=300, filter=None)`: a shell command (str) or an argument
    list, run by the loop without blocking anything. The data is its standard output as text;
    a non-zero exit is a 500 result whose `fetch()` raises `subprocess.CalledProcessError`
    (with the output and the standard error); a command still running after `timeout`
    seconds is killed (STA_TIMEOUT)."""

    def __call__(self, command: str | list[str], timeout: float = 300, filter: Callable[[Any], Any] | None = None,
                 ) -> Task:
        if not command or not isinstance(command, (str, list, tuple)):
            raise TypeError(f"Subprocess needs a command line (str) or an argument list, not {command!r}")
        # the task's own wait covers the command's time limit
        return self.start(functools.partial(self.execute, command, timeout), None, timeout=timeout + 5,
                          filter=filter)

    async def execute(self, command: str | list[str], timeout: float) -> Result:
        pipes = {"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE,
                 "stdin": asyncio.subprocess.DEVNULL}
        if isinstance(command, str):
            process = await asyncio.create_subprocess_shell(command, **pipes)
        else:
            process = await asyncio.create_subprocess_exec(*command, **pipes)
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            return Result.failure(STA_TIMEOUT, reason=f"Command Ran Over {timeout} Seconds")
        except asyncio.CancelledError:
            process.kill()
            raise
        text = out.decode("utf-8", "replace")
        if process.returncode == 0:
            return Result(data=text)
        error = subprocess.CalledProcessError(process.returncode, command, text, err.decode("utf-8", "replace"))
        return Result(STA_NORMAL, 500, f"Command Exited With Status {process.returncode}", text, (), error)

    def map_error(self, error: Exception) -> Result:
        return Result.failure(STA_REQFAIL, error)  # e.g. the program does not exist
