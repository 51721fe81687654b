"""A fixed pool of threads for WSGI apps.

Lighter than `concurrent.futures.ThreadPoolExecutor`: no Future per call, because the caller
never waits on a result (responses go back to the loop through `skitai.loopcalls`).

Why not a `queue.Queue` the threads block on: every put would wake a thread, and under load the
loop queues a request per connection per iteration, so threads would be woken (a futex each, and
a fight for the GIL with the loop that is still reading) far more often than they can run. So:

* jobs wait in a deque; a thread that finishes a job takes the next one without sleeping, and
  only a thread that finds the deque empty goes idle;
* an idle thread sleeps on a pipe of its own, and is woken by one byte written to it;
* submitted from the loop's thread (`loop` given), jobs wake a thread at most once per loop
  iteration, after the iteration's reads, and only when no thread is awake to take them: a busy
  thread comes back to the deque before it sleeps;
* a thread busy for long (a slow app) must not hold up the jobs behind it while others idle:
  while jobs wait and a thread is idle, a watcher on the loop wakes one more thread whenever the
  deque did not empty for `STALL` seconds.

Jobs submitted from other threads (or to a pool without a loop) wake an idle thread at once.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any, Callable, ContextManager

log = logging.getLogger("skitai.threads")

STALL = 0.001  # seconds jobs may wait with a thread idle before the watcher wakes it


class _Sleeper:
    """One pool thread's way to sleep until woken: a pipe it reads a byte from."""

    __slots__ = ("read_fd", "write_fd")

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()

    def sleep(self) -> None:
        os.read(self.read_fd, 1)

    def wake(self) -> None:
        os.write(self.write_fd, b"\0")

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


class ThreadPool:
    def __init__(self, size: int, name: str = "skitai-wsgi",
                 job_context: Callable[[], ContextManager] | None = None, loop: Any = None) -> None:
        """`job_context()`, when given, is entered around each job on the thread that runs it
        (`---profile` profiles the pool's work that way, and not its idle waits). `loop`, when
        given, is the running loop of the thread that makes the pool (see the module)."""
        self.size = size
        self._job_context = job_context
        self._jobs: deque = deque()
        # Sleepers of the idle threads. A thread registers itself, and is taken off to be woken,
        # under the lock, which also covers the loop's look at the deque: a job is never left
        # queued behind a thread that went to sleep without seeing it.
        self._idle: list[_Sleeper] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._loop = loop
        self._loop_thread = threading.get_ident() if loop is not None else None
        self._wake_scheduled = False
        self._watcher = None       # the stall watcher's timer handle, while armed
        self._emptied = False      # a thread took the last queued job since the watcher looked
        self._threads = [threading.Thread(target=self._work, args=(_Sleeper(),), name=f"{name}-{index}",
                                          daemon=True)
                         for index in range(size)]
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        """Calls waiting for a free thread."""
        return len(self._jobs)

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        self._jobs.append((function, args))
        if self._loop_thread == threading.get_ident():
            if not self._wake_scheduled:
                self._wake_scheduled = True
                self._loop.call_soon(self._wake_for_iteration)
        else:
            self._wake_one(only_if_none_awake=False)

    # waking (the loop's side)
    def _wake_for_iteration(self) -> None:
        """On the loop thread, once per iteration that submitted jobs (see the module)."""
        self._wake_scheduled = False
        self._wake_one(only_if_none_awake=True)
        if self._jobs and self._idle and self._watcher is None and not self._stopping:
            self._emptied = False
            self._watcher = self._loop.call_later(STALL, self._watch_stall)

    def _watch_stall(self) -> None:
        self._watcher = None
        if not self._emptied:
            self._wake_one(only_if_none_awake=False)
        self._emptied = False
        if self._jobs and self._idle and not self._stopping:
            self._watcher = self._loop.call_later(STALL, self._watch_stall)

    def _wake_one(self, only_if_none_awake: bool) -> None:
        with self._lock:
            idle = self._idle
            if not self._jobs or not idle or (only_if_none_awake and len(idle) < self.size):
                return
            sleeper = idle.pop()  # the last to sleep: its memory is likeliest still in cache
        sleeper.wake()

    # the pool threads' side
    def _work(self, sleeper: _Sleeper) -> None:
        context = self._job_context
        jobs = self._jobs
        try:
            while True:
                try:
                    function, args = jobs.popleft()
                except IndexError:
                    if self._rest(sleeper):
                        continue
                    return
                if not jobs:
                    self._emptied = True
                try:
                    if context is None:
                        function(*args)
                    else:
                        with context():
                            function(*args)
                except BaseException:
                    log.exception("unhandled error in a pool thread")
        finally:
            sleeper.close()

    def _rest(self, sleeper: _Sleeper) -> bool:
        """The deque looked empty: sleep until woken, unless a job came meanwhile. False when
        the pool stops and nothing is left to do."""
        with self._lock:
            if self._jobs:
                return True
            if self._stopping:
                return False
            self._idle.append(sleeper)
        sleeper.sleep()
        return True

    def shutdown(self, timeout: float) -> None:
        """Let queued work finish, then stop the threads (waiting at most `timeout` in total:
        threads still busy then are left to end on their own, as daemon threads)."""
        with self._lock:
            self._stopping = True
            idle, self._idle = self._idle, []
        for sleeper in idle:
            sleeper.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
