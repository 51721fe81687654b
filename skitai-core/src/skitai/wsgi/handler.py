"""Running a WSGI app for one exchange (PEP 3333).

The app runs on a pool thread (or on the loop thread with `threads=0`); every response call goes
back to the loop thread. The common case (a list or a str body) costs exactly one
`exchange.call_soon_threadsafe` (batched with other threads' responses into one wake-up of the
loop): status, headers and body travel together and leave in one write.
Streamed bodies wait on the exchange's `writable` event, so a slow client slows the app instead
of filling memory. The iterable's `close()` is always called, also when the client went away.
"""
from __future__ import annotations

import contextvars
import logging
import os
import sys
import traceback
from typing import Any, Callable

from ..body import BodyTimeout, ClientDisconnected
from ..config import ServerConfig
from ..errors import HTTPError
from ..exchange import Exchange, FileSegment, RequestHandler
from ..fields import FORBIDDEN_TRAILER_FIELDS
from ..ranges import UNSATISFIABLE, if_range_allows, parse_range, range_response
from ..services import REQUEST_END_KEY, current, run_request_end
from ..statuses import error_body, error_headers, status_line
from .admission import Admission
from .environ import base_environ, build_environ
from .filewrapper import FileWrapper

# tracebacks of failing apps: app.log with file logging (skitai.logs)
app_errors = logging.getLogger("skitai.app")

# Response header fields already found valid, each mapped to whether it is a `Trailer` field:
# apps answer with the same few fields (often the very same tuples), so a repeat costs one
# lookup instead of the checks. Bounded, since an app may put per-request values in them.
_VALID_FIELDS: dict[tuple[str, str], bool] = {}
VALID_FIELDS_SIZE = 1024


def _check_fields(headers: list[tuple[str, str]]) -> bool:
    """Validate an app's response header fields (PEP 3333 and RFC 9110); True when they
    declare a `Trailer`."""
    declares_trailers = False
    valid = _VALID_FIELDS
    for field in headers:
        try:
            trailer = valid.get(field)
        except TypeError:  # not a hashable pair: the checks below say what is wrong with it
            trailer = None
        if trailer is None:
            name, value = field
            _check_field(name, value)
            lower = name.lower()
            if lower == "content-length" and not value.strip().isdigit():
                raise ValueError(f"invalid Content-Length {value!r}")
            trailer = lower == "trailer"
            if type(field) is tuple:
                if len(valid) >= VALID_FIELDS_SIZE:
                    valid.clear()
                valid[field] = trailer
        if trailer:
            declares_trailers = True
    return declares_trailers


# Status lines already found valid: apps answer with a few, as constants whose hash is kept,
# so a repeat costs one lookup instead of the checks. Bounded like _VALID_FIELDS.
_VALID_STATUSES: set[str] = set()


def _check_status(status: str) -> None:
    if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
        raise ValueError(f"invalid WSGI status {status!r}")
    if type(status) is str:  # a subclass's equality could be its own: checked every time
        if len(_VALID_STATUSES) >= VALID_FIELDS_SIZE:
            _VALID_STATUSES.clear()
        _VALID_STATUSES.add(status)


def _check_field(name: str, value: str) -> None:
    if type(name) is not str or type(value) is not str:
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"WSGI header names and values must be str: {(name, value)!r}")
    if (not name or ":" in name or "\r" in name or "\n" in name or "\x00" in name
            or "\r" in value or "\n" in value or "\x00" in value):
        raise ValueError(f"invalid character in WSGI header {(name, value)!r}")


class WSGIApp(RequestHandler):
    """A mounted WSGI application."""

    def __init__(self, point: str, app: Callable) -> None:
        self.point = point
        self.app = app
        self.pool = None
        self.admission: Admission | None = None
        self.write_timeout = ServerConfig.request_timeout  # until bind() reads the settings
        self.debug = False
        self.script_name = "" if point == "/" else point.rstrip("/")
        self._base = base_environ(self.script_name, multithread=True)

    def __repr__(self) -> str:
        return f"<WSGIApp {self.point} {self.app!r}>"

    def bind(self, server) -> None:
        config = server.config
        self.pool = server.pool
        self.needs_full_body = self.pool is None
        if self.pool is not None:
            self.admission = Admission(self.pool, config.max_queued_requests, config.request_timeout)
        # the longest an app waits for a client that stopped reading (the spec's request
        # timeout: the longest gap between sending events)
        self.write_timeout = config.request_timeout
        # tracebacks in 500 answers: in development mode, or for an app that asks (app.debug)
        self.debug = server.config.devel or bool(getattr(self.app, "debug", False))
        self._base = base_environ(self.script_name, multithread=self.pool is not None,
                                  multiprocess=server.multiprocess)
        self._base["skitai.server"] = server  # how `skitai.was` finds this process's services

    def environ_for(self, exchange: Exchange) -> dict:
        return build_environ(self._base, exchange)

    def dispatch(self, exchange: Exchange, environ: dict | None = None,
                 response: "WSGIResponse | None" = None) -> None:
        """Run the app for `exchange` on the pool, or with threads=0 on the loop thread as
        its next callback, in a fresh `contextvars` context either way, with `environ` (built
        here when not given); `response` stands in for the plain `WSGIResponse` when a handler
        must see the result first (a WebSocket handshake's).

        Why threads=0 waits for a callback instead of calling the app at once: the loop first
        reads every connection that is ready, and the responses of that pass then go out one
        after the other, as the pool's do (and uvicorn's tasks'). Answered at once, each one
        went out between two reads, and its client, idle by then, had to be woken for each:
        that cost the kernel more per request than the callback costs, and clients took
        fewer responses per wake-up."""
        if environ is None:
            environ = build_environ(self._base, exchange)
        if self.admission is None:
            exchange.loop.call_soon(self.run, exchange, environ, response, context=contextvars.Context())
        else:
            self.admission.submit(exchange, self.run, exchange, environ, response)

    # RequestHandler.handle(exchange): dispatch itself, a call fewer on every request
    handle = dispatch

    def run(self, exchange: Exchange, environ: dict, response: "WSGIResponse | None" = None) -> None:
        if exchange.aborted:  # the client left before its turn (threads=0; the pool checks first)
            return
        if response is None:
            response = WSGIResponse(exchange, self.admission is not None, self.write_timeout)
        result = None
        # Skitai's WSGI extensions (documented in the README): trailers, HTTP/2 server push, and
        # answering with another WSGI app than the one running (skitai.websocket on a plain GET)
        environ["skitai.set_trailers"] = response.set_trailers
        environ["skitai.push"] = exchange.push
        environ["skitai.replace_response"] = response.replace_with
        current.environ = environ  # `skitai.was` for this request, also while its body iterates
        try:
            result = self.app(environ, response.start_response)
            if response.replacement is not None:
                result, replaced = None, result
                _close_result(replaced, environ)
                result = response.run_replacement(environ)
            if response.send_result(result):
                result = None  # closed once the file is sent
        except ClientDisconnected:
            response.abort(cancelled=True)
        except BodyTimeout:
            response.fail(408, None)
        except HTTPError as error:  # an app's (or a corequest's) way to answer with an error status
            response.fail(error.code, None, error.status, error.explain)
        except Exception:
            app_errors.exception("%s %s failed", environ["REQUEST_METHOD"], environ["REQUEST_URI"])
            response.fail(500, sys.exc_info() if self.debug else None)
        finally:
            if result is not None and type(result) is not list:  # lists, the common answer, have no close()
                _close_result(result, environ)
            if REQUEST_END_KEY in environ:  # only a service (a database) registers any
                run_request_end(environ)
            current.environ = None


def _close_result(result: Any, environ: dict) -> None:
    if hasattr(result, "close"):
        try:
            result.close()
        except Exception:
            app_errors.exception("closing the response of %s %s failed",
                                 environ["REQUEST_METHOD"], environ["REQUEST_URI"])


class WSGIResponse:
    """start_response, write() and the sending of the app's iterable for one exchange."""

    # starting values that every request reads before it sets them are set by `__init__`:
    # CPython 3.11 reads a class-level value through an instance on its slow, unspecialized
    # path until the instance sets its own, which costs more than the store
    headers: "list[tuple[str, str]] | tuple" = ()   # replaced, never changed in place
    declares_trailers = False  # a `Trailer` header: the body is streamed (chunked)

    def __init__(self, exchange: Exchange, threaded: bool, write_timeout: float) -> None:
        self.exchange = exchange
        self.threaded = threaded
        self.write_timeout = write_timeout
        self.status: str | None = None
        self.head_sent = False
        self.replacement: Callable | None = None

    # loop calls
    def _call(self, function: Callable[..., Any], *args: Any) -> None:
        if self.threaded:
            self.exchange.call_soon_threadsafe(function, *args)
        else:
            function(*args)

    def _wait_writable(self) -> None:
        exchange = self.exchange
        if self.threaded and not exchange.writable.is_set():
            if not exchange.writable.wait(self.write_timeout):
                raise ClientDisconnected(f"client stopped reading for {self.write_timeout:g} seconds")
        if exchange.aborted:
            raise ClientDisconnected("client closed the connection")

    # PEP 3333 start_response and write
    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info=None):
        if exc_info:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if type(status) is not str or status not in _VALID_STATUSES:
            _check_status(status)
        declares_trailers = _check_fields(headers)
        self.status = status
        self.headers = list(headers)
        self.declares_trailers = declares_trailers
        return self.write

    def replace_with(self, app: Callable) -> None:
        """`environ["skitai.replace_response"]`: once the running app returns, its response is
        dropped and the WSGI app `app` answers the request instead (called with the same
        environ). Too late once the app has started sending its body (`write()`)."""
        if self.head_sent:
            raise RuntimeError("the response has started: it can no longer be replaced")
        self.replacement = app

    def run_replacement(self, environ: dict) -> Any:
        if self.head_sent:
            raise RuntimeError("the response started before its replacement could answer")
        self.status, self.headers, self.declares_trailers = None, [], False
        return self.replacement(environ, self.start_response)

    def set_trailers(self, trailers: list[tuple[str, str]]) -> None:
        """`environ["skitai.set_trailers"]`: fields sent after the body, replacing any set before.

        Call it before the response iterable is exhausted (a generator may call it after its
        last chunk). HTTP/2 sends them as a final HEADERS frame; HTTP/1.1 as the trailer section
        of a chunked body when the client sent `TE: trailers`, else they are dropped. Declare
        the names in a `Trailer` response header: it also makes Skitai stream the body, which
        HTTP/1.1 needs to carry trailers at all.
        """
        fields = []
        for name, value in trailers:
            _check_field(name, value)
            lower = name.lower()
            if not (name + value).isascii() and not _latin1(name + value):
                raise ValueError(f"trailer {(name, value)!r} is not latin-1 (PEP 3333)")
            if lower in FORBIDDEN_TRAILER_FIELDS:
                raise ValueError(f"{name!r} is not allowed in trailers (RFC 9110 6.5.1)")
            fields.append((lower, value))
        self._call(self.exchange.set_trailers, fields)

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("write() called before start_response")
        self._send_head()
        if data:
            self._wait_writable()
            self._call(self.exchange.send_data, bytes(data))

    def _send_head(self) -> None:
        if not self.head_sent:
            self.head_sent = True
            self._call(self.exchange.send_head, self.status, self.headers)

    # sending the result
    def send_result(self, result: Any) -> bool:
        """Send the app's return value; True when the exchange took over closing it."""
        streamed = self.head_sent or self.declares_trailers
        if type(result) is not list:  # a list, the common answer, is none of these
            if isinstance(result, FileWrapper) and not streamed and result.fileno() is not None:
                self._require_status()
                self._call(self._send_file, result)
                return True
            if isinstance(result, str):
                result = [result]
        if isinstance(result, (list, tuple)) and not streamed:
            if len(result) == 1 and type(result[0]) is bytes:
                body = result[0]  # the common `[b"..."]`: no join
            else:
                body = b"".join(part.encode("utf-8") if isinstance(part, str) else part for part in result)
            if self.status is None:  # _require_status, without the call on the common path
                self._require_status()
            self.head_sent = True
            exchange = self.exchange
            if self.threaded:  # _call, inline on the common path
                exchange.call_soon_threadsafe(exchange.send_response, self.status, self.headers, body)
            else:
                exchange.send_response(self.status, self.headers, body)
            return False
        for part in result:
            if isinstance(part, str):
                part = part.encode("utf-8")
            if not part:
                continue
            self._require_status()
            self._send_head()
            self._wait_writable()
            self._call(self.exchange.send_data, part)
        self._require_status()
        self._send_head()
        self._call(self.exchange.finish)
        return False

    def _require_status(self) -> None:
        if self.status is None:
            raise AssertionError("the WSGI app returned without calling start_response")

    def _send_file(self, wrapper: FileWrapper) -> None:
        """On the loop thread: the file from its current position, honouring Range on 200s."""
        exchange = self.exchange
        exchange.add_done_callback(lambda _: self._close_later(wrapper))
        fd = wrapper.fileno()
        offset = wrapper.filelike.tell() if hasattr(wrapper.filelike, "tell") else 0
        size = os.fstat(fd).st_size - offset
        headers = self.headers
        declared = _header(headers, "content-length")
        if declared is not None:
            size = min(size, int(declared))
        status = self.status
        if status.startswith("200") and exchange.method == "GET" and _header(headers, "content-range") is None:
            if if_range_allows(exchange.header("if-range"), _header(headers, "etag"),
                               _header(headers, "last-modified")):
                ranges = parse_range(exchange.header("range"), size)
                if ranges == UNSATISFIABLE:
                    exchange.send_response(status_line(416), error_headers() + [("Content-Range", f"bytes */{size}")],
                                           error_body(416))
                    return
                if ranges:
                    content_type = _header(headers, "content-type")
                    status, extra, pieces = range_response(ranges, size, content_type, wrapper.filelike, offset)
                    drop = {"content-length"} | ({"content-type"} if len(ranges) > 1 else set())
                    headers = [h for h in headers if h[0].lower() not in drop] + extra
                    exchange.send_response(status, headers, pieces)
                    return
        headers = [h for h in headers if h[0].lower() != "content-length"]
        exchange.send_response(status, headers, [FileSegment(wrapper.filelike, offset, size)])

    def _close_later(self, wrapper: FileWrapper) -> None:
        if hasattr(wrapper, "close"):
            wrapper.close()

    # failures
    def fail(self, code: int, exc_info, status: str | None = None, detail: str = "") -> None:
        if self.head_sent:
            self.abort()
            return
        self.head_sent = True
        body = error_body(code, detail)
        if exc_info is not None:
            body += "".join(traceback.format_exception(*exc_info)).encode("utf-8", "replace")
        self._call(self.exchange.send_response, status or status_line(code),
                   error_headers() + [("Connection", "close")], body)

    def abort(self, cancelled: bool = False) -> None:
        self._call(self.exchange.abort, cancelled)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None
