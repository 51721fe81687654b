"""`environ["websocket"]`: the app's side of one WebSocket, and the drivers that feed it.

An app accepts a handshake through `skitai.websocket` in one of the spec's two styles, each a
driver here:

* `GeneratorDriver`: the view is a generator, one per connection: `message = yield` receives,
  a yielded value (a str or bytes, or a list or iterator of them) is sent, and returning ends
  the WebSocket. It runs inside a copy of the handshake call's `contextvars` context, so a
  framework's request context (Flask's `request`) stays usable after the view returned.
* `MessageDriver`: the WSGI app is called again for every message, with the message as a
  query parameter (`?message=...`, the name the app chose) and in `environ["websocket.message"]`;
  what it returns is sent back. Optional `onopen` and `onclose` calls go through the app too.
  Each call starts in a fresh `contextvars` context, like any WSGI call.

Driver calls of one WebSocket run one at a time, in arrival order, on the server's thread pool
(`SerialJobs`): an idle WebSocket holds no thread, and a slow app pauses reading from its client
instead of queueing without end. `send` and `close` work from any thread (from the pool, through
the loop's `skitai.loopcalls`, in the order they were made).
"""
from __future__ import annotations

import contextvars
import logging
import threading
from collections import deque
from typing import Any, Callable
from urllib.parse import quote_plus

from ..body import EMPTY_BODY
from ..loopcalls import loop_calls
from ..services import current, run_request_end

app_errors = logging.getLogger("skitai.app")

HANDSHAKE, OPEN, CLOSED = "handshake", "open", "closed"
SEND_TIMEOUT = 300.0   # seconds a sender waits for a client that stopped reading
INBOX_HIGH = 32        # messages waiting for the app before the client is read no more ...
INBOX_LOW = 8          # ... until the app caught up to this many


class ConnectionClosed(ConnectionError):
    """The WebSocket is closed (or closing): nothing more can be sent on it."""


class SerialJobs:
    """Runs one WebSocket's calls in order, one at a time, on `pool` (inline when None)."""

    def __init__(self, pool) -> None:
        self.pool = pool
        self.jobs: deque = deque()
        self.running = False
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.jobs)

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        with self.lock:
            self.jobs.append((function, args))
            if self.running:
                return
            self.running = True
        if self.pool is None:
            self._drain()
        else:
            self.pool.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self.lock:
                if not self.jobs:
                    self.running = False
                    return
                function, args = self.jobs.popleft()
            function(*args)


class WebSocket:
    """`environ["websocket"]`: `send(message)`, `close(code, reason)`, `closed`.

    Made on the loop thread when a handshake arrives; the app accepts it during the handshake
    call (see `skitai.websocket`), and the connection drives it from then on.
    """

    def __init__(self, loop, pool, app: Callable, environ: dict) -> None:
        self.loop = loop
        self._loop_calls = loop_calls(loop)  # sends, closes and resumes keep their order
        self.app = app
        self.environ = environ            # the handshake's environ, as it was before the app ran
        self._loop_thread = threading.get_ident()
        self.state = HANDSHAKE
        self.driver: GeneratorDriver | MessageDriver | None = None
        self.timeout: float | None = None
        self.close_code: int | None = None  # the code the WebSocket closed with, once it has
        self.writable = threading.Event()
        self.writable.set()
        self.jobs = SerialJobs(pool)
        self._conn = None
        self._early: list = []              # sent before the switch; they go first
        self._input_paused = False

    def __repr__(self) -> str:
        return f"<WebSocket {self.environ.get('PATH_INFO', '')!r} {self.state}>"

    # accepting (the app's handshake call, through skitai.websocket)
    @property
    def accepted(self) -> bool:
        return self.driver is not None

    def accept_session(self, generator, context, timeout: float | None) -> None:
        self._accept(GeneratorDriver(self, generator, context), timeout)

    def accept_messages(self, varname: str, timeout: float | None, onopen: bool, onclose: bool) -> None:
        self._accept(MessageDriver(self, varname, onopen, onclose), timeout)

    def _accept(self, driver, timeout: float | None) -> None:
        if self.driver is not None:
            raise RuntimeError("this WebSocket was accepted already")
        self.driver = driver
        self.timeout = timeout

    # the app's interface, from any thread
    @property
    def closed(self) -> bool:
        return self.state == CLOSED

    def send(self, message: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message; waits while the client is slow to read.
        Raises `ConnectionClosed` once the WebSocket is closed or closing."""
        if isinstance(message, (bytearray, memoryview)):
            message = bytes(message)
        elif not isinstance(message, (str, bytes)):
            raise TypeError(f"a WebSocket message is str or bytes, not {type(message).__name__}")
        if self.state == HANDSHAKE:
            self._early.append(message)
            return
        if self.state == CLOSED:
            raise ConnectionClosed("the WebSocket is closed")
        if threading.get_ident() == self._loop_thread:
            self._conn.send_message(message)
            return
        writable = self.writable
        if not writable.is_set() and not writable.wait(SEND_TIMEOUT):  # is_set: no lock taken
            raise ConnectionClosed(f"the client read nothing for {SEND_TIMEOUT:.0f} seconds")
        if self.state == CLOSED:
            raise ConnectionClosed("the WebSocket is closed")
        self._loop_calls.call(self._conn.send_message, message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (once; later calls do nothing)."""
        if self.state == CLOSED:
            return
        if self.state == HANDSHAKE:
            self._early.append((code, reason))
            return
        self.state = CLOSED
        if threading.get_ident() == self._loop_thread:
            self._conn.close_websocket(code, reason)
        else:
            self._loop_calls.call(self._conn.close_websocket, code, reason)

    # the connection's side (loop thread)
    def opened(self, conn) -> None:
        self._conn = conn
        self.state = OPEN
        early, self._early = self._early, []
        for item in early:
            if isinstance(item, tuple):
                self.close(*item)
            else:
                conn.send_message(item)
        self.jobs.submit(self.driver.start)

    def deliver(self, message: str | bytes) -> None:
        self.jobs.submit(self._receive, message)
        if len(self.jobs) >= INBOX_HIGH and not self._input_paused:
            self._input_paused = True
            self._conn.pause_input()

    def _receive(self, message: str | bytes) -> None:
        self.driver.message(message)
        if self._input_paused and len(self.jobs) <= INBOX_LOW:
            self._input_paused = False
            self._loop_calls.call(self._conn.resume_input)

    def input_ended(self, code: int) -> None:
        """The client closed (or went away, 1006): the driver hears of it once, after the
        messages that came before."""
        self.state = CLOSED
        self.close_code = code
        self.writable.set()  # wake senders so they see it
        if self.driver is not None:
            self.jobs.submit(self.driver.end)

    def run_as_request(self, environ: dict, function: Callable[..., Any], *args: Any) -> Any:
        """Call `function` with `skitai.was` bound to `environ` (this WebSocket's request); what
        it registered with `at_request_end` runs when it returns (one message's call is one request)."""
        saved = getattr(current, "environ", None)
        current.environ = environ
        try:
            return function(*args)
        finally:
            run_request_end(environ)
            current.environ = saved


class GeneratorDriver:
    """The spec's `@skitai.websocket(timeout)` style: one generator per connection."""

    def __init__(self, websocket: WebSocket, generator, context) -> None:
        if not hasattr(generator, "send"):
            raise TypeError("skitai.websocket(timeout) needs a generator function "
                            "(`message = yield`); for a function called once per message use "
                            "skitai.websocket('name', timeout)")
        self.websocket = websocket
        self.generator = generator
        self.context = context
        self.started = False
        self.done = False

    def start(self) -> None:
        self.started = True
        self._step(next, self.generator)

    def message(self, message: str | bytes) -> None:
        self._step(self.generator.send, message)

    def end(self) -> None:
        """The client is gone: the generator receives None (the spec's `if not message:
        return`), anything it still yields is dropped, and it is closed."""
        if not self.done and self.started:
            self._step(self.generator.send, None, replies=False)
        if not self.done:
            self.done = True
            self._run(self.generator.close)

    def _run(self, function, *args):
        websocket = self.websocket
        return websocket.run_as_request(websocket.environ, self.context.run, function, *args)

    def _step(self, function, *args, replies: bool = True) -> None:
        if self.done:
            return
        websocket = self.websocket
        try:
            out = self._run(function, *args)
            while out is not None:
                if replies:
                    _send_replies(websocket, out)
                out = self._run(next, self.generator)
        except StopIteration:
            self.done = True
            websocket.close(1000)
        except ConnectionClosed:
            pass  # the client left while we answered: `end` follows
        except Exception:
            self.done = True
            app_errors.exception("WebSocket %s failed", websocket.environ.get("PATH_INFO"))
            websocket.close(1011, "internal error")


def _send_replies(websocket: WebSocket, out: Any) -> None:
    if isinstance(out, (str, bytes, bytearray, memoryview)):
        websocket.send(out)
    elif isinstance(out, (list, tuple)) or hasattr(out, "__next__"):
        for item in out:
            websocket.send(item)
    else:
        raise TypeError(f"a WebSocket reply is str, bytes or a list or iterator of them, "
                        f"not {type(out).__name__}")


class MessageDriver:
    """The spec's `@skitai.websocket("message", timeout)` style: the app is called per message."""

    def __init__(self, websocket: WebSocket, varname: str, onopen: bool, onclose: bool) -> None:
        self.websocket = websocket
        self.varname = varname
        self.onopen = onopen
        self.onclose = onclose
        self.failed = False

    def start(self) -> None:
        if self.onopen:
            self._call("open", None)

    def message(self, message: str | bytes) -> None:
        self._call("message", message)

    def end(self) -> None:
        if self.onclose:
            self._call("close", None)

    def _call(self, event: str, message: str | bytes | None) -> None:
        if self.failed:
            return
        websocket = self.websocket
        environ = dict(websocket.environ)
        environ["websocket.event"] = event
        environ["wsgi.input"] = EMPTY_BODY
        if message is not None:
            environ["websocket.message"] = message
            query = environ.get("QUERY_STRING", "")
            environ["QUERY_STRING"] = f"{query}&" * bool(query) + f"{self.varname}={quote_plus(message)}"
        try:
            # a fresh context per call, as for every WSGI call (see skitai.wsgi.admission)
            status, content_type, body = contextvars.Context().run(
                websocket.run_as_request, environ, _call_app, websocket.app, environ)
            if not status.startswith("2"):
                raise RuntimeError(f"the app answered {status!r} to a WebSocket {event}")
            if body and event != "close":
                websocket.send(_as_message(body, content_type))
        except ConnectionClosed:
            pass
        except Exception:
            self.failed = True
            app_errors.exception("WebSocket %s failed", environ.get("PATH_INFO"))
            websocket.close(1011, "internal error")


def _call_app(app: Callable, environ: dict) -> tuple[str, str | None, bytes | str]:
    """One WSGI call, its answer collected: status, content type and body. A bare str or bytes
    (or None) returned without start_response is taken as the body of a 200."""
    answer: dict = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, headers
        return chunks.append

    chunks: list = []
    result = app(environ, start_response)
    if isinstance(result, (str, bytes)):
        chunks.append(result)
    elif result is not None:
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
    content_type = next((value for name, value in answer.get("headers", ())
                         if name.lower() == "content-type"), None)
    if chunks and all(isinstance(chunk, str) for chunk in chunks):
        return answer.get("status", "200 OK"), content_type, "".join(chunks)
    body = b"".join(chunk.encode("utf-8") if isinstance(chunk, str) else chunk for chunk in chunks)
    return answer.get("status", "200 OK"), content_type, body


def _as_message(body: bytes | str, content_type: str | None) -> str | bytes:
    """A text message for text answers (text/*, JSON, XML, or no type and valid UTF-8)."""
    if isinstance(body, str):
        return body
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and not (kind.startswith("text/") or kind.endswith(("json", "xml"))):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body
