"""A fixed pool of threads for WSGI apps.

Lighter than `concurrent.futures.ThreadPoolExecutor`: no Future per call, because the caller
never waits on a result (responses go back to the loop by `call_soon_threadsafe`).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, ContextManager

log = logging.getLogger("skitai.threads")


class ThreadPool:
    def __init__(self, size: int, name: str = "skitai-wsgi",
                 job_context: Callable[[], ContextManager] | None = None) -> None:
        """`job_context()`, when given, is entered around each job on the thread that runs it
        (`---profile` profiles the pool's work that way, and not its idle waits)."""
        self.size = size
        self._job_context = job_context
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
                         for index in range(size)]
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        """Calls waiting for a free thread."""
        return self._queue.qsize()

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        self._queue.put((function, args))

    def _work(self) -> None:
        context = self._job_context
        while True:
            item = self._queue.get()
            if item is None:
                return
            function, args = item
            try:
                if context is None:
                    function(*args)
                else:
                    with context():
                        function(*args)
            except BaseException:
                log.exception("unhandled error in a pool thread")

    def shutdown(self, timeout: float) -> None:
        """Let queued work finish, then stop the threads (waiting at most `timeout` in total:
        threads still busy then are left to end on their own, as daemon threads)."""
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
