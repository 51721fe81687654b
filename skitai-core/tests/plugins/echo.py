"""A test plugin that adds `was.echo(value)`, proving the corequest driver API: a `Driver`
subclass with an `execute()` coroutine, registered by `skitai_register_services`; and
`was.pooled_echo(value, fail=None)`, a driver whose `execute()` answers its own thread pool's
`concurrent.futures.Future` instead (the answer is `(value, name of the thread that ran it)`).

`was.echo(value, delay=0, fail=None, gate=None)` answers `value` after `delay` seconds on the
worker loop; `fail` makes it fail ("neterr", "reqfail", "timeout", or an HTTP status code);
`gate` makes it wait until the test opens that gate (`open_gate`). Every run is recorded in
`runs` as (value, started, ended) with `time.time()` stamps taken on the loop.
"""
import asyncio
import concurrent.futures
import threading
import time

from skitai.corequest import STA_NORMAL, Driver, Result
from skitai.plugin import hookimpl
from skitai.statuses import status_line


class Echo(Driver):
    def __init__(self, was):
        super().__init__(was)
        self.runs = []
        self.finished = threading.Condition()
        self._gates = {}

    async def execute(self, value, delay=0.0, fail=None, gate=None):
        started = time.time()
        if gate is not None:
            await self._gate(gate).wait()
        if delay:
            await asyncio.sleep(delay)
        with self.finished:
            self.runs.append((value, started, time.time()))
            self.finished.notify_all()
        if fail == "neterr":
            raise ConnectionRefusedError("echo: connection refused")
        if fail == "reqfail":
            raise ValueError("echo: cannot echo that")
        if fail == "timeout":
            raise TimeoutError("echo: upstream timed out")
        if isinstance(fail, int):
            return Result(STA_NORMAL, fail, status_line(fail)[4:], value, [("X-Echo", str(value))])
        return value

    def _gate(self, name):
        return self._gates.setdefault(name, asyncio.Event())

    def open_gate(self, name):
        """From any thread: let the runs waiting on `name` go on."""
        self.was.engine.loop.call_soon_threadsafe(lambda: self._gate(name).set())

    def wait_for_runs(self, count, timeout=10):
        with self.finished:
            if not self.finished.wait_for(lambda: len(self.runs) >= count, timeout):
                raise TimeoutError(f"echo: {len(self.runs)} of {count} runs finished within {timeout} s")


class PooledEcho(Driver):
    def __init__(self, was):
        super().__init__(was)
        self.pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pooled-echo")

    def execute(self, value, fail=None):
        return self.pool.submit(self._answer, value, fail)

    @staticmethod
    def _answer(value, fail):
        if fail == "timeout":
            raise TimeoutError("pooled echo: the work timed out")
        return value, threading.current_thread().name

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


@hookimpl
def skitai_register_services(was):
    was.add_service("echo", Echo(was))
    was.add_service("pooled_echo", PooledEcho(was))
