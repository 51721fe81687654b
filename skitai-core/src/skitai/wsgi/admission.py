"""Admission of WSGI calls to the thread pool, so that overload has a bound.

Without one, a server past its capacity queues requests without end: each waits longer than the
last, clients give up and retry, and the pool ends up running apps for clients long gone. So:

* the queue of calls waiting for a free thread is bounded (`skitai.set_max_queued_requests`);
  beyond it a request is answered 503 with `Retry-After` at once, on the loop thread;
* a call that waited in the queue longer than the request timeout is answered 503 instead of
  run: its client has likely given up, and running it would delay every call behind it;
* a call whose client went away while it waited (a lost connection, a reset stream) is not run
  at all; the connection logged the request as aborted when it saw the client leave.

Every admitted call runs in a fresh `contextvars.Context`, so nothing an app sets in one request
(a tracing span, a framework's request-local state) is seen by the next call on the same thread.
"""
from __future__ import annotations

import contextvars
import logging
import time
from typing import Any, Callable

from ..exchange import Exchange
from ..statuses import error_body, error_headers, status_line

log = logging.getLogger("skitai.wsgi")

RETRY_AFTER = "1"  # seconds a refused client is asked to wait before trying again


class Admission:
    """Runs `function(*args)` for an exchange on `pool`, or answers 503 (see the module)."""

    def __init__(self, pool, max_queued: int, queue_timeout: float) -> None:
        self.pool = pool
        self.max_queued = max_queued
        self.queue_timeout = queue_timeout

    def submit(self, exchange: Exchange, function: Callable[..., Any], *args: Any) -> None:
        """On the loop thread (the only one that submits requests, so the bound holds)."""
        if self.pool.queued >= self.max_queued:
            answer_busy(exchange, "too many requests are waiting")
            return
        self.pool.submit(self._start, exchange, time.monotonic(), function, args)

    def _start(self, exchange: Exchange, queued_at: float, function: Callable[..., Any], args: tuple) -> None:
        """On the pool thread that picked the call."""
        if exchange.aborted or exchange.finished:
            log.debug("%s %s not run: the client left while it waited", exchange.method, exchange.target)
            return
        if time.monotonic() - queued_at > self.queue_timeout:
            exchange.call_soon_threadsafe(answer_busy, exchange, "the request waited too long for a thread")
            return
        contextvars.Context().run(function, *args)


def answer_busy(exchange: Exchange, reason: str) -> None:
    """503 with Retry-After (loop thread)."""
    exchange.send_response(status_line(503), error_headers() + [("Retry-After", RETRY_AFTER)],
                           error_body(503, reason))
