"""The engine's hand-off between the loop and the app's threads (`skitai.corequest.handoff` and
`Engine`), on a real uvloop loop in a thread: results, errors, timeouts and cancellation in
every order the threads can meet, and the running set."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time

import pytest
import uvloop

from skitai.corequest.engine import Engine
from skitai.corequest.handoff import Handoff
from skitai.corequest.result import STA_NORMAL, STA_REQFAIL, STA_UNSENT, Result

WAIT = 10


@pytest.fixture
def loop():
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT)
    loop.close()


@pytest.fixture
def engine(loop):
    return Engine(loop, None, None)


def on_loop(loop, function, *args):
    """`function(*args)` on the loop thread; its return value."""
    done = concurrent.futures.Future()
    loop.call_soon_threadsafe(lambda: done.set_result(function(*args)))
    return done.result(WAIT)


def map_error(error):
    return Result.failure(STA_REQFAIL, error)


def test_a_waiter_is_woken_by_the_result_and_every_later_waiter_passes(loop):
    handoff = Handoff(loop)
    timer = threading.Timer(0.05, handoff.set_result, ("value",))
    timer.start()
    assert handoff.result(WAIT) == "value"
    assert handoff.result(0) == "value" and handoff.done() and not handoff.cancelled()
    assert handoff.set_result("again") is False and handoff.cancel() is False
    timer.join(WAIT)


def test_result_times_out_then_still_settles(loop):
    handoff = Handoff(loop)
    started = time.monotonic()
    with pytest.raises(concurrent.futures.TimeoutError):
        handoff.result(0.05)
    assert time.monotonic() - started >= 0.05
    for no_wait in (0, -1, -0.5):  # as concurrent.futures.Future: a look, not a wait
        with pytest.raises(concurrent.futures.TimeoutError):
            handoff.result(no_wait)
    handoff.set_exception(LookupError("held"))
    with pytest.raises(LookupError, match="held"):
        handoff.result(0)


def test_cancel_wakes_all_waiters_and_runs_callbacks_once(loop):
    handoff = Handoff(loop)
    outcomes, seen = [], []
    handoff.add_done_callback(lambda done: seen.append(done.cancelled()))

    def wait():
        try:
            handoff.result(WAIT)
        except concurrent.futures.CancelledError:
            outcomes.append("cancelled")

    waiters = [threading.Thread(target=wait) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.05)
    assert handoff.cancel() is True and handoff.cancel() is False
    for waiter in waiters:
        waiter.join(WAIT)
    assert outcomes == ["cancelled"] * 3 and seen == [True]
    handoff.add_done_callback(lambda done: seen.append("late"))  # already settled: at once
    assert seen == [True, "late"]


def test_a_failing_callback_does_not_stop_the_settling(loop, caplog):
    handoff = Handoff(loop)
    seen = []
    handoff.add_done_callback(lambda done: 1 / 0)
    handoff.add_done_callback(lambda done: seen.append(done.result()))
    assert handoff.set_result(3) is True
    assert seen == [3] and "done-callback failed" in caplog.text


def test_cancelling_cancels_the_started_task_on_the_loop(loop):
    handoff = Handoff(loop)
    task = on_loop(loop, lambda: loop.create_task(asyncio.sleep(WAIT)))
    assert on_loop(loop, handoff.started, task) is True
    handoff.cancel()
    deadline = time.monotonic() + WAIT
    while not task.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert task.cancelled()


def test_started_after_a_cancel_answers_false(loop):
    handoff = Handoff(loop)
    handoff.cancel()
    task = on_loop(loop, lambda: loop.create_task(asyncio.sleep(0)))
    assert on_loop(loop, handoff.started, task) is False


# the engine
async def echo(value, delay=0.0):
    await asyncio.sleep(delay)
    return value


def test_submit_resolves_to_a_result_in_the_callers_context(engine):
    variable = contextvars.ContextVar("variable")
    variable.set("the request's")

    async def read():
        return variable.get()

    result = engine.submit(read(), map_error).result(WAIT)
    assert (result.status, result.data) == (STA_NORMAL, "the request's")
    assert engine.started == 1


def test_errors_are_mapped(engine):
    async def fail():
        raise KeyError("missing")

    result = engine.submit(fail(), map_error).result(WAIT)
    assert result.status == STA_REQFAIL and isinstance(result.expt, KeyError)


def test_a_failing_error_mapping_is_the_handoffs_exception(engine):
    async def fail():
        raise KeyError("missing")

    def broken(error):
        raise RuntimeError("mapping broke")

    with pytest.raises(RuntimeError, match="mapping broke"):
        engine.submit(fail(), broken).result(WAIT)


def test_timeout_then_cancel_stops_the_operation_and_empties_the_running_set(engine):
    cancelled = threading.Event()

    async def slow():
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    handoff = engine.submit(slow(), map_error)
    with pytest.raises(concurrent.futures.TimeoutError):
        handoff.result(0.1)
    assert engine.running == 1
    handoff.cancel()
    assert cancelled.wait(WAIT)
    assert on_loop(engine.loop, lambda: engine.running) == 0


def test_a_handoff_cancelled_before_the_loop_started_it_never_runs(engine):
    ran = []

    async def record():
        ran.append(1)

    gate = threading.Event()
    engine.loop.call_soon_threadsafe(gate.wait, WAIT)  # the loop is busy until the gate opens
    handoff = engine.submit(record(), map_error)
    handoff.cancel()
    gate.set()
    assert on_loop(engine.loop, lambda: (engine.running, engine.started)) == (0, 0)
    assert ran == []


def test_close_cancels_the_running_and_refuses_new_ones(engine):
    handoff = engine.submit(echo(1, delay=WAIT), map_error)
    deadline = time.monotonic() + WAIT
    while engine.running == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.close()
    with pytest.raises(concurrent.futures.CancelledError):
        handoff.result(WAIT)
    assert engine.submit(echo(2), map_error).result(0).status == STA_UNSENT


# work already running in a pool: adopted, not awaited on the loop
@pytest.fixture
def pool():
    executor = concurrent.futures.ThreadPoolExecutor(1)
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


def test_an_adopted_future_answers_results_without_the_loop(engine, pool, monkeypatch):
    loop_calls = []  # the loop must not be asked for anything
    monkeypatch.setattr(engine.loop, "call_soon_threadsafe", lambda *args: loop_calls.append(args))
    assert engine.submit(pool.submit(lambda: "value"), map_error).result(WAIT).data == "value"
    own = Result(STA_NORMAL, 201, "Created", "x")
    assert engine.submit(pool.submit(lambda: own), map_error).result(WAIT) is own
    assert loop_calls == [] and engine.running == 0


def test_an_adopted_futures_exceptions_are_mapped_even_its_own_timeout_error(engine, pool):
    def raise_(error):
        raise error

    result = engine.submit(pool.submit(raise_, KeyError("gone")), map_error).result(WAIT)
    assert result.status == STA_REQFAIL and isinstance(result.expt, KeyError)
    # the work's own TimeoutError is its failure, not the wait's timeout
    result = engine.submit(pool.submit(raise_, TimeoutError("the work's own")), map_error).result(WAIT)
    assert result.status == STA_REQFAIL and str(result.expt) == "the work's own"


def test_waiting_on_an_adopted_future_times_out_and_cancel_drops_queued_work(engine, pool):
    gate = threading.Event()
    busy = engine.submit(pool.submit(gate.wait, WAIT), map_error)
    queued = engine.submit(pool.submit(lambda: "never"), map_error)
    seen = []
    queued.add_done_callback(lambda done: seen.append(done.cancelled()))
    with pytest.raises(concurrent.futures.TimeoutError):
        busy.result(0.05)
    assert queued.cancel() is True and queued.cancelled() and seen == [True]
    with pytest.raises(concurrent.futures.CancelledError):
        queued.result(0)
    gate.set()
    assert busy.result(WAIT).data is True and busy.done()


def test_a_closed_engine_refuses_adopted_work(engine, pool):
    gate = threading.Event()
    pool.submit(gate.wait, WAIT)
    queued = pool.submit(lambda: "never")
    engine.close()
    assert engine.submit(queued, map_error).result(0).status == STA_UNSENT
    assert queued.cancelled()
    gate.set()
