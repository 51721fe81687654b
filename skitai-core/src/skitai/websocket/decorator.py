"""`skitai.websocket`: how a view of any WSGI framework accepts a WebSocket (the spec's API).

    @app.route("/echo")
    @skitai.websocket(60)            # a generator per connection; 60 s idle timeout
    def echo():
        while True:
            message = yield
            if not message:
                return
            yield "ECHO:" + message

    @app.route("/chat")
    @skitai.websocket("message", 60, onopen=greet, onclose=bye)   # the view runs per message
    def chat():
        request.environ["websocket"].send("You said," + request.args["message"])

The wrapper learns from the request's environ (through `skitai.was`'s binding, so it works
for Flask, Django and plain WSGI alike) which call this is: the handshake (accept, and let the
server switch protocols), a message, open or close (MessageDriver's calls), or a plain HTTP
request, which is answered `426 Upgrade Required`.
"""
from __future__ import annotations

import contextvars
import functools
from typing import Any, Callable

from ..services import current
from ..statuses import error_body, error_headers, status_line
from .channel import WebSocket


def websocket(varname: Any = 60, timeout: float | None = 60, onopen: Callable | None = None,
              onclose: Callable | None = None) -> Callable[[Callable], Callable]:
    """`websocket(timeout)`: the view is a generator, driven once per connection.
    `websocket(varname, timeout, onopen=None, onclose=None)`: the view is called for every
    message, which it finds as the query parameter `varname`; `onopen()` and `onclose()`, when
    given, are called (through the app, so inside its request context) as the WebSocket opens
    and closes. A view's (or callback's) non-empty return value is sent to the client."""
    if isinstance(varname, (int, float)) and not isinstance(varname, bool):
        if onopen is not None or onclose is not None:
            raise TypeError("skitai.websocket(timeout) drives a generator: onopen and onclose need "
                            "skitai.websocket(varname, timeout, onopen, onclose)")
        timeout, varname = varname, None
    elif not isinstance(varname, str) or not varname:
        raise TypeError("skitai.websocket(timeout) or skitai.websocket('name', timeout)")

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            environ = getattr(current, "environ", None)
            if environ is None:
                raise RuntimeError("a skitai.websocket view runs only in an app served by Skitai")
            socket = environ.get("websocket")
            if not isinstance(socket, WebSocket):
                environ["skitai.replace_response"](upgrade_required)
                return _empty_answer(args)
            event = environ.get("websocket.event")
            if event == "handshake":
                if varname is None:
                    socket.accept_session(view(*args, **kwargs), contextvars.copy_context(), timeout)
                else:
                    socket.accept_messages(varname, timeout, onopen is not None, onclose is not None)
                return _empty_answer(args)
            if event == "open":
                return _empty_answer(args, onopen())
            if event == "close":
                return _empty_answer(args, onclose())
            return _empty_answer(args, view(*args, **kwargs))  # the spec's views return nothing

        return wrapper

    return decorator


def upgrade_required(environ: dict, start_response) -> list[bytes]:
    """The answer to a plain HTTP request for a WebSocket view (RFC 9110 15.5.22)."""
    start_response(status_line(426), error_headers() + [("Upgrade", "websocket"), ("Connection", "Upgrade")])
    return [error_body(426, "this is a WebSocket endpoint")]


def _empty_answer(args: tuple, value: Any = None) -> Any:
    """What the framework expects a view to return, when the server answers itself: Django
    wants an HttpResponse; Flask and plain WSGI take a str."""
    request = args[0] if args else None
    if hasattr(request, "META") and hasattr(request, "build_absolute_uri"):  # a Django HttpRequest
        from django.http import HttpResponse

        return value if isinstance(value, HttpResponse) else HttpResponse(value or b"")
    return "" if value is None else value
