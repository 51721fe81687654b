"""`skitai.was`: the services of the Skitai process serving the current request.

The WSGI handler sets one thread-local reference (the request's environ) around each app call;
nothing else happens per request. `was.<name>` then looks up the serving process's `Was`
(built at server start, see `skitai.corequest.was`) through that environ, only when an app uses
it. Outside a request served by Skitai there is no such process, and `was` says so.
"""
from __future__ import annotations

import threading
from typing import Any

current = threading.local()  # .environ: the WSGI environ of the request this thread runs


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
