"""The hand-off between the event loop and the WSGI pool (`skitai.threadpool` and
`skitai.loopcalls`), on real loops in a thread: jobs run in order and are never stranded when a
submit races a thread going idle, threads are woken once per loop iteration rather than once per
job, a slow job does not hold up the ones behind it, results reach the loop many per wake-up and
in order, a stop lets queued jobs finish, and exceptions are reported without stopping the rest.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import threading
import weakref
from collections import deque

import pytest
import uvloop

from skitai import loopcalls, threadpool
from skitai.loopcalls import LoopCalls, loop_calls
from skitai.threadpool import ThreadPool

WAIT = 10


def run_loop(loop):
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(params=["uvloop", "asyncio"])
def loop(request):
    loop = uvloop.new_event_loop() if request.param == "uvloop" else asyncio.new_event_loop()
    thread = run_loop(loop)
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT)
    loop.close()


def on_loop(loop, function, *args):
    """`function(*args)` on the loop thread; its return value."""
    done = concurrent.futures.Future()

    def call():
        try:
            done.set_result(function(*args))
        except BaseException as error:
            done.set_exception(error)
    loop.call_soon_threadsafe(call)
    return done.result(WAIT)


def loop_pool(loop, size):
    """A pool made on the loop's thread, as the server makes it."""
    return on_loop(loop, lambda: ThreadPool(size, loop=loop))


@pytest.fixture
def no_watcher(monkeypatch):
    """The stall watcher out of the way (it would wake a thread within a millisecond), so that
    only the hand-off itself can get a job to a thread."""
    monkeypatch.setattr(threadpool, "STALL", 3600.0)


@pytest.fixture
def wakes(monkeypatch):
    """Counts the bytes written to sleeping pool threads."""
    counted = []
    wake = threadpool._Sleeper.wake

    def counting(sleeper):
        counted.append(sleeper)
        wake(sleeper)
    monkeypatch.setattr(threadpool._Sleeper, "wake", counting)
    return counted


def wait_idle(pool, count):
    """Until `count` threads sleep (they go idle as soon as they start, or finish their jobs)."""
    gone_idle = threading.Event()
    for _ in range(WAIT * 1000):
        if len(pool._idle) == count:
            return
        gone_idle.wait(0.001)
    raise AssertionError(f"{count} pool threads never went idle")


# the pool

def test_one_thread_runs_jobs_in_the_order_submitted(loop):
    pool = loop_pool(loop, 1)
    done = []
    on_loop(loop, lambda: [pool.submit(done.append, index) for index in range(500)])
    pool.shutdown(WAIT)
    assert done == list(range(500))


class PausingDeque(deque):
    """A deque that, once armed, holds the pool thread that finds it empty right there (past
    its look, before it goes idle) until `resume` is set: the window a submit can race into."""

    armed = False

    def __init__(self, *args):
        super().__init__(*args)
        self.paused, self.resume = threading.Event(), threading.Event()

    def popleft(self):
        try:
            return super().popleft()
        except IndexError:
            if self.armed:
                self.armed = False
                self.paused.set()
                self.resume.wait(WAIT)
            raise


@pytest.mark.parametrize("submitter", ["loop", "thread"])
def test_a_job_submitted_as_the_thread_goes_idle_is_never_stranded(loop, no_watcher, monkeypatch, submitter):
    """With the watcher away, a job queued while the only thread is between finding the deque
    empty and going to sleep would be stranded for good if that thread did not look again."""
    monkeypatch.setattr(threadpool, "deque", PausingDeque)
    pool = loop_pool(loop, 1)
    wait_idle(pool, 1)
    jobs = pool._jobs
    jobs.armed = True
    on_loop(loop, pool.submit, lambda: None)
    assert jobs.paused.wait(WAIT)
    ran = threading.Event()
    if submitter == "loop":
        on_loop(loop, pool.submit, ran.set)
        on_loop(loop, lambda: None)  # after the iteration's wake-up, which found no thread idle
    else:
        pool.submit(ran.set)
    jobs.resume.set()
    assert ran.wait(WAIT), "the job was stranded in the deque"
    pool.shutdown(WAIT)


def test_jobs_submitted_from_other_threads_are_never_stranded(loop, no_watcher):
    pool = loop_pool(loop, 3)
    done = threading.Semaphore(0)
    submitters = [threading.Thread(target=lambda: [pool.submit(done.release) for _ in range(1000)])
                  for _ in range(4)]
    for submitter in submitters:
        submitter.start()
    for submitter in submitters:
        submitter.join(WAIT)
    for index in range(4000):
        assert done.acquire(timeout=WAIT), f"{4000 - index} jobs were stranded"
    pool.shutdown(WAIT)


def test_jobs_submitted_in_one_loop_iteration_wake_one_thread(loop, no_watcher, wakes):
    pool = loop_pool(loop, 4)
    wait_idle(pool, 4)
    done = threading.Semaphore(0)
    on_loop(loop, lambda: [pool.submit(done.release) for _ in range(50)])
    for _ in range(50):
        assert done.acquire(timeout=WAIT)
    assert len(wakes) == 1  # was one per job: 4 threads woken for 50 jobs, each a futex
    pool.shutdown(WAIT)


def test_no_thread_is_woken_while_one_is_awake_to_take_the_jobs(loop, no_watcher, wakes):
    pool = loop_pool(loop, 4)
    wait_idle(pool, 4)
    started, release = threading.Event(), threading.Event()
    ran = threading.Event()

    def first():
        started.set()
        release.wait(WAIT)
    on_loop(loop, pool.submit, first)
    assert started.wait(WAIT)
    on_loop(loop, pool.submit, ran.set)  # the busy thread takes it once `first` returns
    on_loop(loop, lambda: None)  # after the iteration's wake-up
    assert len(wakes) == 1 and not ran.is_set()
    release.set()
    assert ran.wait(WAIT)
    pool.shutdown(WAIT)


def test_a_slow_job_does_not_hold_up_the_jobs_behind_it(loop):
    """The watcher wakes an idle thread for jobs that wait behind a busy one."""
    pool = loop_pool(loop, 2)
    wait_idle(pool, 2)
    started, release = threading.Event(), threading.Event()
    behind = threading.Event()

    def slow():
        started.set()
        release.wait(WAIT)
    on_loop(loop, pool.submit, slow)
    assert started.wait(WAIT)
    on_loop(loop, pool.submit, behind.set)
    try:
        assert behind.wait(WAIT), "the job behind a busy thread waited while another idled"
    finally:
        release.set()
    pool.shutdown(WAIT)


def test_shutdown_lets_jobs_queued_on_busy_threads_finish(loop):
    pool = loop_pool(loop, 2)
    busy, release = threading.Semaphore(0), threading.Event()
    done = []

    def hold():
        busy.release()
        release.wait(WAIT)
    on_loop(loop, lambda: [pool.submit(hold) for _ in range(2)])
    for _ in range(2):
        assert busy.acquire(timeout=WAIT)
    on_loop(loop, lambda: [pool.submit(done.append, index) for index in range(20)])
    stopping = threading.Thread(target=pool.shutdown, args=(WAIT,))
    stopping.start()
    release.set()
    stopping.join(WAIT)
    assert sorted(done) == list(range(20))
    assert not any(thread.is_alive() for thread in pool._threads)


def test_a_failing_job_is_logged_and_the_thread_goes_on(loop, caplog):
    pool = loop_pool(loop, 1)
    done = []

    def fail():
        raise ValueError("broken app")
    with caplog.at_level(logging.ERROR, logger="skitai.threads"):
        on_loop(loop, lambda: [pool.submit(fail), pool.submit(done.append, 1)])
        pool.shutdown(WAIT)
    assert done == [1]
    assert "broken app" in caplog.text


# the calls back to the loop

def test_calls_from_a_thread_run_on_the_loop_in_order(loop):
    calls = loop_calls(loop)
    seen, finished = [], threading.Event()
    loop_thread = on_loop(loop, threading.get_ident)

    def record(index):
        seen.append((index, threading.get_ident()))
    for index in range(1000):
        calls.call(record, index)
    calls.call(finished.set)
    assert finished.wait(WAIT)
    assert seen == [(index, loop_thread) for index in range(1000)]


def test_one_loop_has_one_loop_calls(loop):
    assert loop_calls(loop) is loop_calls(loop)
    assert on_loop(loop, loop_calls, loop) is loop_calls(loop)


def test_many_calls_made_while_the_loop_is_busy_take_one_wake_up(monkeypatch):
    loop = asyncio.new_event_loop()  # its call_soon_threadsafe can be counted
    thread = run_loop(loop)
    try:
        calls = LoopCalls(loop)
        gate, busy = threading.Event(), threading.Event()
        loop.call_soon_threadsafe(lambda: (busy.set(), gate.wait(WAIT)))
        assert busy.wait(WAIT)
        wake_ups = []
        threadsafe = loop.call_soon_threadsafe
        monkeypatch.setattr(loop, "call_soon_threadsafe",
                            lambda *args, **kwargs: (wake_ups.append(args), threadsafe(*args, **kwargs)))
        seen, finished = [], threading.Event()
        senders = [threading.Thread(target=lambda base=base: [calls.call(seen.append, base + index)
                                                                for index in range(100)])
                   for base in (0, 1000, 2000)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(WAIT)
        gate.set()
        calls.call(finished.set)
        assert finished.wait(WAIT)
        assert len(wake_ups) <= 2  # one for the 300 calls (another for the last, were they run)
        assert sorted(seen) == sorted(base + index for base in (0, 1000, 2000) for index in range(100))
        for base in (0, 1000, 2000):  # each thread's calls in its order
            assert [value for value in seen if base <= value < base + 100] == list(range(base, base + 100))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT)
        loop.close()


def test_a_failing_call_goes_to_the_exception_handler_and_the_rest_run(loop):
    reported, finished = [], threading.Event()
    loop.set_exception_handler(lambda _, context: reported.append(context["exception"]))
    calls = loop_calls(loop)
    seen = []

    def fail():
        raise ValueError("broken callback")
    calls.call(seen.append, 1)
    calls.call(fail)
    calls.call(seen.append, 2)
    calls.call(finished.set)
    assert finished.wait(WAIT)
    assert seen == [1, 2]
    assert [str(error) for error in reported] == ["broken callback"]


def test_a_call_to_a_closed_loop_raises_every_time():
    loop = asyncio.new_event_loop()
    calls = LoopCalls(loop)
    loop.close()
    for _ in range(2):
        with pytest.raises(RuntimeError):
            calls.call(print)


def test_a_loop_that_is_gone_leaves_no_loop_calls_behind():
    loop = asyncio.new_event_loop()
    calls = loop_calls(loop)
    assert loopcalls._by_loop.get(weakref.ref(loop)) is calls
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None
    assert calls not in loopcalls._by_loop.values()
