"""Calls from other threads to an event loop, many per wake-up of the loop.

Every response a pool thread produces has to reach the loop thread. One
`loop.call_soon_threadsafe` per response costs a handle, a context copy and a write to the loop's
wake-up fd each time, and wakes the loop once per response. `LoopCalls` queues the calls instead
and wakes the loop once for everything queued until it runs them: under load, many responses
from several threads leave in one wake-up.

The calls run on the loop thread in the order they were made (from one thread; calls from
different threads interleave in the order they were queued), in a context of their own, not
the caller's `contextvars` context. An exception a call raises goes to the loop's exception
handler and the calls after it still run, as with `call_soon_threadsafe`.

Code that must keep its order with these calls uses the same `LoopCalls` (`loop_calls(loop)`):
everything an app's thread asks of an exchange or a WebSocket goes through it.
"""
from __future__ import annotations

import contextvars
import threading
import weakref
from collections import deque
from typing import Any, Callable


class LoopCalls:
    """A queue of calls that the loop runs in batches (see the module)."""

    def __init__(self, loop: Any) -> None:
        # weak: the registry below keeps this object as long as the loop lives, not longer
        self._loop = weakref.ref(loop)
        self._calls: deque = deque()
        self._wake_pending = False
        self._context = contextvars.Context()  # spares a copy of the caller's on each wake-up

    def call(self, function: Callable[..., Any], *args: Any) -> None:
        """Run `function(*args)` on the loop thread soon. Any thread."""
        self._calls.append((function, args))
        if not self._wake_pending:
            # Set before the wake-up, and cleared by `_run` before it looks at the queue: a call
            # queued while the flag is set is always seen by a `_run` still to come.
            self._wake_pending = True
            loop = self._loop()
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._run, context=self._context)
                except BaseException:  # a closed loop: the next call tries (and raises) again
                    self._wake_pending = False
                    raise

    def _run(self) -> None:
        """On the loop thread: the calls queued so far. Calls queued meanwhile find the flag
        cleared and wake the loop again, so they wait for the next iteration rather than keep
        this one from its I/O."""
        self._wake_pending = False
        calls = self._calls
        for _ in range(len(calls)):
            function, args = calls.popleft()
            try:
                function(*args)
            except Exception as error:
                self._loop().call_exception_handler({
                    "message": f"Exception in callback {function!r}", "exception": error})


# LoopCalls by a weak reference to their loop: `ref(loop)` and `dict.get` are C calls, cheaper
# than a WeakKeyDictionary's Python ones on this once-per-response path. The stored key's
# callback drops the entry once its loop is gone.
_by_loop: "dict[weakref.ref, LoopCalls]" = {}
_creating = threading.Lock()
_ref = weakref.ref


def loop_calls(loop: Any) -> LoopCalls:
    """The one `LoopCalls` of `loop` (made on first use, from any thread)."""
    calls = _by_loop.get(_ref(loop))
    if calls is None:
        with _creating:
            calls = _by_loop.get(_ref(loop))
            if calls is None:
                calls = _by_loop[_ref(loop, _forget)] = LoopCalls(loop)
    return calls


def _forget(key: weakref.ref) -> None:
    _by_loop.pop(key, None)
