"""`skitai.was`: the services of the Skitai process serving the current request.

The WSGI handler sets one thread-local reference (the request's environ) around each app call;
nothing else happens per request. `was.<name>` then looks up the serving process's `Was`
(built at server start, see `skitai.corequest.was`) through that environ, only when an app uses
it. Outside a request served by Skitai there is no such process, and `was` says so.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

current = threading.local()  # .environ: the WSGI environ of the request this thread runs
REQUEST_END_KEY = "skitai.request_end"
log = logging.getLogger("skitai.app")


def at_request_end(callback: Callable[[], Any]) -> None:
    """Call `callback()` on this thread when the current request's app has returned and its
    response iterable is closed (before the thread serves anything else), even when the app
    raised; for a WebSocket app, when its call for one message (or event) has returned. For
    services that hold something per request and must give it back (a database transaction
    left open). Callbacks run in the order they were added; one that raises is logged and the
    others still run. Outside a request it raises `WasUnboundError`."""
    environ = getattr(current, "environ", None)
    if environ is None:
        raise WasUnboundError("at_request_end() is only available while Skitai serves a request")
    environ.setdefault(REQUEST_END_KEY, []).append(callback)


def run_request_end(environ: dict) -> None:
    """Run what `at_request_end` registered for the request of `environ` (by its server)."""
    for callback in environ.pop(REQUEST_END_KEY, ()):
        try:
            callback()
        except Exception:
            log.exception("a request-end callback failed: %r", callback)


class WasUnboundError(RuntimeError):
    """`was` was used outside a request served by Skitai."""


class WasProxy:
    """`from skitai import was`: forwards to the current request's `Was`; `was.env` is the
    request's WSGI environ."""

    __slots__ = ()

    @staticmethod
    def websocket(*args: Any, **kwargs: Any) -> Any:
        """`@was.websocket(...)`: the manual's other spelling of `skitai.websocket`, usable
        when the view is defined (outside any request)."""
        from .websocket.decorator import websocket

        return websocket(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        environ = getattr(current, "environ", None)
        if environ is None:
            raise WasUnboundError(
                f"skitai.was.{name} is only available while Skitai serves a request: this thread "
                "runs no request of a Skitai server (was it called at import time, from a thread "
                "the app started, or from an app run by another server?)")
        if name == "env":
            return environ
        return getattr(environ["skitai.server"].was, name)

    def __repr__(self) -> str:
        environ = getattr(current, "environ", None)
        return "<skitai.was (unbound)>" if environ is None else repr(environ["skitai.server"].was)


was = WasProxy()
