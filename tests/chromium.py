"""A small Chrome DevTools Protocol driver for end-to-end tests with headless Chromium.

    from chromium import Chromium, requires_chromium

    @requires_chromium
    def test_page(server):
        with Chromium() as browser:
            page = browser.open(server.url("/"))              # returns after the load event
            assert page.evaluate("document.title") == "Hello"
            answer = page.evaluate("fetch('/api').then(r => r.text())")   # promises are awaited
            page.wait_for("window.done === true", timeout=10)
            echoed = page.evaluate('''new Promise((resolve, reject) => {
                const ws = new WebSocket(`ws://${location.host}/echo`);
                ws.onopen = () => ws.send("hi");
                ws.onmessage = event => { resolve(event.data); ws.close(); };
                ws.onerror = () => reject(new Error("websocket failed"));
            })''', timeout=10)

`Chromium()` starts its own Chromium (`--headless`, a fresh profile in a temporary folder,
`--remote-debugging-port=0`), reads the DevTools address from `DevToolsActivePort` and speaks
CDP over one websocket (the `websockets` library's sync client), with a reader thread that
hands responses to their callers and keeps each page's events. Leaving the block closes the
browser (CDP `Browser.close`, then SIGTERM and SIGKILL to the pid it started) and removes the
temporary folder. Values come back by value (JSON); a JavaScript exception or a rejected promise
raises `JavaScriptError`, a failed navigation `NavigationError`, and every wait has a timeout
(`TimeoutError`).

HTTPS: `Chromium(ca_certificates=[certs.ca])` trusts a test CA (such as the one of
`skitai.testing.make_certificates`) through an NSS database in the browser's own $HOME, so
chains and host names are checked as for any site; it needs `certutil` (apt-get install
libnss3-tools). Without it, `pinned_certificates=[certs.cert]` accepts that server key whatever
its chain, and `ignore_certificate_errors=True` accepts anything.

The binary is `$SKITAI_CHROMIUM` when set (a path that is missing makes `requires_chromium`
skip), else `chromium` (or `chromium-browser`) on PATH.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import inspect
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Any, Sequence

from skitai.testing import requires

BINARY_ENV = "SKITAI_CHROMIUM"
DEFAULT_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--no-proxy-server",
    "--mute-audio", "--password-store=basic", "--use-mock-keychain",
)


def chromium_binary() -> str | None:
    """The Chromium to run: `$SKITAI_CHROMIUM` if set (None when it is not an executable file),
    else `chromium` or `chromium-browser` found on PATH, else None."""
    configured = os.environ.get(BINARY_ENV)
    if configured is not None:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """Why the driver cannot run here, or None."""
    if chromium_binary() is None:
        return f"chromium is not installed (CI: apt-get install chromium) or ${BINARY_ENV} names no executable"
    if importlib.util.find_spec("websockets") is None:
        return "websockets is not installed (CI: pip install -r requirements-test.txt)"
    return None


requires_chromium = requires(missing())


def can_trust_ca() -> bool:
    """Whether `Chromium(ca_certificates=...)` can work here (certutil is installed)."""
    return shutil.which("certutil") is not None


def spki_hash(cert_pem_path: str) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of the first certificate in a PEM file: the form
    `--ignore-certificate-errors-spki-list` takes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(cert_pem_path, "rb") as file:
        cert = x509.load_pem_x509_certificate(file.read())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class CDPError(Exception):
    """An error answer to a DevTools command, or a browser that went away."""


class JavaScriptError(CDPError):
    """An exception thrown (or a promise rejected) by evaluated JavaScript."""


class NavigationError(CDPError):
    """A navigation that failed (net::ERR_...) or never reached its load event."""


class _Connection:
    """One DevTools websocket: commands are answered through their ids by a reader thread;
    events go to the handler registered for their session (None: the browser's own)."""

    def __init__(self, url: str, timeout: float) -> None:
        from websockets.sync.client import connect

        options = {"max_size": None, "open_timeout": timeout, "close_timeout": 2}
        if "proxy" in inspect.signature(connect).parameters:   # websockets >= 15 honours *_proxy
            options["proxy"] = None
        self._stack = contextlib.ExitStack()   # connect() as a context manager, as 12 to 17 accept
        self._ws = self._stack.enter_context(connect(url, **options))
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._waiting: dict[int, dict] = {}   # id -> {"event": threading.Event, "message": ...}
        self._handlers: dict[str | None, Any] = {}
        self.closed: str | None = None
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        slot = self._waiting.pop(message["id"], None)
                    if slot is not None:          # None: its caller timed out and left
                        slot["message"] = message
                        slot["event"].set()
                else:
                    handler = self._handlers.get(message.get("sessionId"))
                    if handler is not None:
                        handler(message["method"], message.get("params", {}))
        except Exception as exc:                   # the socket closed, or the browser died
            self.closed = repr(exc)
        else:
            self.closed = "the DevTools connection closed"
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for slot in waiting.values():
            slot["event"].set()

    def on_events(self, session_id: str | None, handler: Any) -> None:
        self._handlers[session_id] = handler

    def call(self, method: str, params: dict | None = None, session_id: str | None = None,
             timeout: float = 30.0) -> dict:
        slot = {"event": threading.Event(), "message": None}
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        with self._lock:   # the reader sets `closed` before it wakes those waiting, under this lock
            if self.closed:
                raise CDPError(f"{method}: {self.closed}")
            self._waiting[message["id"]] = slot
        try:
            with self._send_lock:
                self._ws.send(json.dumps(message))
        except Exception as exc:
            with self._lock:
                self._waiting.pop(message["id"], None)
            raise CDPError(f"{method}: {exc!r}") from None
        if not slot["event"].wait(timeout):
            with self._lock:
                self._waiting.pop(message["id"], None)
            raise TimeoutError(f"no answer to {method} within {timeout} s")
        answer = slot["message"]
        if answer is None:
            raise CDPError(f"{method}: {self.closed}")
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error'].get('message')} {answer['error'].get('data', '')}".rstrip())
        return answer.get("result", {})

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self._reader.join(5)


class Page:
    """A tab (a CDP target with its own session). Made by `Chromium.open` or `new_page`.

    `console` holds the page's console messages as (type, text), with the browser's log entries
    (("network:error", "Failed to load resource ... URL") ...), and `exceptions` its uncaught
    exceptions as text, in the order they came; the last ones go into error messages. With the
    Network domain on (`open(url, network=True)`), `responses` holds the CDP Response of every
    response received (`url`, `status`, `protocol` ("h2", "http/1.1"), `headers` ..., and the
    resource `type`), and `network` every Network event but dataReceived as (method, params):
    `Network.webSocketCreated`, `Network.webSocketFrameReceived`, `Network.loadingFailed` ..."""

    def __init__(self, browser: "Chromium", target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.console: list[tuple[str, str]] = []
        self.exceptions: list[str] = []
        self.responses: list[dict] = []
        self.network: list[tuple[str, dict]] = []
        self._events: list[tuple[str, dict]] = []
        self._changed = threading.Condition()
        browser._connection.on_events(session_id, self._on_event)

    def _on_event(self, method: str, params: dict) -> None:
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", arg.get("type"))))
                            for arg in params.get("args", []))
            self.console.append((params.get("type", "log"), text))
        elif method == "Log.entryAdded":        # the browser's own: failed loads, CSP ...
            entry = params.get("entry", {})
            self.console.append((f"{entry.get('source', 'log')}:{entry.get('level', '')}",
                                 f"{entry.get('text', '')} {entry.get('url', '')}".rstrip()))
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(_exception_text(params.get("exceptionDetails", {})))
        elif method.startswith("Network.") and method != "Network.dataReceived":
            self.network.append((method, params))
            if method == "Network.responseReceived":
                self.responses.append({**params["response"], "type": params.get("type")})
        elif method.startswith("Page."):
            with self._changed:
                self._events.append((method, params))
                self._changed.notify_all()

    def call(self, method: str, timeout: float | None = None, **params: Any) -> dict:
        """A raw CDP command on this page's session: `page.call("Page.reload")`."""
        return self.browser._connection.call(method, params, self.session_id, timeout or self.browser.timeout)

    def _wait_event(self, method: str, after: int, timeout: float, match: Any = None) -> int:
        """The index of the first `method` event (for which `match(params)` holds) from `after` on."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self._events)):
                    name, params = self._events[index]
                    if name == method and (match is None or match(params)):
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.browser._connection.closed:
                    raise TimeoutError(f"no {method} within {timeout} s ({self._diagnostics()})")
                self._changed.wait(min(remaining, 0.5))

    def navigate(self, url: str, timeout: float | None = None) -> "Page":
        """Load `url` and return when its load event has fired (every image, script and
        stylesheet of the document loaded or failed)."""
        timeout = timeout or self.browser.timeout
        with self._changed:
            after = len(self._events)
        result = self.call("Page.navigate", timeout=timeout, url=url)
        if result.get("errorText"):
            raise NavigationError(f"{url}: {result['errorText']}")
        return self._wait_loaded(after, result.get("loaderId"), timeout, url)

    def _wait_loaded(self, after: int, loader_id: str | None, timeout: float, what: str) -> "Page":
        """Wait for the main frame's new document (`loader_id`'s, when known) and then its load
        event, so a late event of the previous document does not count."""
        def new_document(params: dict) -> bool:
            frame = params.get("frame", {})
            return "parentId" not in frame and loader_id in (None, frame.get("loaderId"))

        deadline = time.monotonic() + timeout
        try:
            navigated = self._wait_event("Page.frameNavigated", after, timeout, new_document)
            self._wait_event("Page.loadEventFired", navigated + 1, max(deadline - time.monotonic(), 0.0))
        except TimeoutError as exc:
            raise NavigationError(f"{what}: {exc}") from None
        return self

    def reload(self, ignore_cache: bool = False, timeout: float | None = None) -> "Page":
        """Reload the page (revalidating what the cache holds, or not using it with
        `ignore_cache`) and return when its load event has fired."""
        timeout = timeout or self.browser.timeout
        with self._changed:
            after = len(self._events)
        self.call("Page.reload", timeout=timeout, ignoreCache=ignore_cache)
        return self._wait_loaded(after, None, timeout, "reload")

    def evaluate(self, expression: str, await_promise: bool = True, timeout: float | None = None) -> Any:
        """The value of a JavaScript expression, returned by value (JSON-able data; None for
        undefined). A promise is awaited (unless `await_promise=False`) for up to `timeout`
        seconds; a thrown exception or a rejection raises JavaScriptError."""
        timeout = timeout or self.browser.timeout
        result = self.call("Runtime.evaluate", timeout=timeout, expression=expression,
                           awaitPromise=await_promise, returnByValue=True, userGesture=True)
        if "exceptionDetails" in result:
            raise JavaScriptError(f"{_exception_text(result['exceptionDetails'])} "
                                  f"(in: {expression[:200]!r}; {self._diagnostics()})")
        value = result.get("result", {})
        return value.get("value") if "value" in value else None

    def wait_for(self, expression: str, timeout: float | None = None, interval: float = 0.05) -> Any:
        """The first truthy value of `expression`, evaluated every `interval` seconds; a
        TimeoutError naming the last value when none comes within `timeout` seconds."""
        timeout = timeout or self.browser.timeout
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression, timeout=max(deadline - time.monotonic(), 0.1))
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"{expression!r} still {value!r} after {timeout} s ({self._diagnostics()})")

    def _diagnostics(self) -> str:
        return f"console: {self.console[-10:]}, exceptions: {self.exceptions[-5:]}"

    def close(self) -> None:
        self.browser._connection.call("Target.closeTarget", {"targetId": self.target_id},
                                      timeout=self.browser.timeout)


def _exception_text(details: dict) -> str:
    exception = details.get("exception") or {}
    return exception.get("description") or str(exception.get("value", "")) or details.get("text", "error")


class Chromium:
    """A headless Chromium for one `with` block (or `start()` ... `stop()`).

    - `args`: extra command-line switches.
    - `ca_certificates`: PEM files of CAs to trust as roots (added to an NSS database in the
      browser's temporary $HOME with certutil; see `can_trust_ca()`).
    - `pinned_certificates`: PEM certificate files whose keys Chromium accepts whatever their
      chain (`--ignore-certificate-errors-spki-list`), while every other certificate is checked.
    - `ignore_certificate_errors`: accept any certificate (`--ignore-certificate-errors`).
    - `timeout`: the default for starting, commands, navigation and evaluation, in seconds.
    - `quic`: let Chromium speak QUIC (HTTP/3), which the default switches turn off so that
      every other test sees TCP only; `--origin-to-force-quic-on=host:port` then makes it use
      HTTP/3 for that origin from the first request.

    The browser's own output (it is chatty) goes to `output`, for diagnostics.
    """

    def __init__(self, *args: str, binary: str | None = None, ca_certificates: Sequence[str] = (),
                 pinned_certificates: Sequence[str] = (), ignore_certificate_errors: bool = False,
                 timeout: float = 30.0, quic: bool = False) -> None:
        self.binary = binary or chromium_binary()
        self.args = list(args)
        self.defaults = [arg for arg in DEFAULT_ARGS if not (quic and arg == "--disable-quic")]
        if quic:
            self.args.append("--enable-quic")
        self.ca_certificates = list(ca_certificates)
        if pinned_certificates:
            self.args.append("--ignore-certificate-errors-spki-list="
                             + ",".join(spki_hash(path) for path in pinned_certificates))
        if ignore_certificate_errors:
            self.args.append("--ignore-certificate-errors")
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.pages: list[Page] = []
        self._dir: str | None = None
        self._log = None
        self._output = ""
        self._connection: _Connection | None = None

    @property
    def output(self) -> str:
        if self._log is None or self._log.closed:
            return self._output
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def start(self) -> "Chromium":
        if self.binary is None:
            raise FileNotFoundError(f"no chromium: install it (apt-get install chromium) or set ${BINARY_ENV}")
        self._dir = tempfile.mkdtemp(prefix="skitai-chromium-")
        profile = os.path.join(self._dir, "profile")
        self._log = tempfile.TemporaryFile(dir=self._dir)
        try:
            if self.ca_certificates:
                self._trust(os.path.join(self._dir, ".pki", "nssdb"))
            self.process = subprocess.Popen(
                [self.binary, *self.defaults, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                 *self.args, "about:blank"],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                env={**os.environ, "HOME": self._dir})
            url = self._devtools_url(os.path.join(profile, "DevToolsActivePort"))
            self._connection = _Connection(url, self.timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _trust(self, nssdb: str) -> None:
        """Chromium on Linux takes its user's extra roots from $HOME/.pki/nssdb."""
        certutil = shutil.which("certutil")
        if certutil is None:
            raise FileNotFoundError("ca_certificates needs certutil (apt-get install libnss3-tools)")
        os.makedirs(nssdb)
        commands = [[certutil, "-N", "-d", f"sql:{nssdb}", "--empty-password"]]
        commands += [[certutil, "-A", "-d", f"sql:{nssdb}", "-n", f"test-ca-{number}", "-t", "C,,", "-i", path]
                     for number, path in enumerate(self.ca_certificates)]
        for command in commands:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")

    def _devtools_url(self, path: str) -> str:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.process.returncode}:\n{self.output[-3000:]}")
            try:
                with open(path) as file:
                    lines = file.read().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 2 and lines[0].isdigit():
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise TimeoutError(f"chromium wrote no {path} within {self.timeout} s:\n{self.output[-3000:]}")

    def call(self, method: str, timeout: float | None = None, **params: Any) -> dict:
        """A raw browser-level CDP command: `browser.call("Browser.getVersion")`."""
        return self._connection.call(method, params, None, timeout or self.timeout)

    def new_page(self, network: bool = False) -> Page:
        """A new blank tab with the Page, Runtime and Log domains enabled, and with `network`
        the Network domain too (filling `Page.responses` and `Page.network`)."""
        target_id = self.call("Target.createTarget", url="about:blank")["targetId"]
        session_id = self.call("Target.attachToTarget", targetId=target_id, flatten=True)["sessionId"]
        page = Page(self, target_id, session_id)
        for domain in ("Page", "Runtime", "Log", *(("Network",) if network else ())):
            page.call(f"{domain}.enable")
        self.pages.append(page)
        return page

    def open(self, url: str, timeout: float | None = None, network: bool = False) -> Page:
        """A new tab (see `new_page`) that has loaded `url` (see `Page.navigate`)."""
        return self.new_page(network).navigate(url, timeout)

    def stop(self) -> None:
        """Close the browser: CDP Browser.close, then SIGTERM and at last SIGKILL to the pid
        this object started, each with a timeout; remove the temporary folder."""
        asked = False
        try:
            if self._connection is not None:
                if self.process is not None and self.process.poll() is None and not self._connection.closed:
                    try:
                        self._connection.call("Browser.close", timeout=5)
                        asked = True
                    except (CDPError, TimeoutError, OSError):
                        asked = bool(self._connection.closed)   # it closed the socket as it went
                self._connection.close()
                self._connection = None
        finally:
            try:
                if self.process is not None:
                    _end(self.process, asked)
            finally:
                if self._log is not None and not self._log.closed:
                    self._output = self.output
                    self._log.close()
                if self._dir is not None:
                    shutil.rmtree(self._dir, ignore_errors=True)
                    self._dir = None

    def __enter__(self) -> "Chromium":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _end(process: subprocess.Popen, asked: bool) -> None:
    """Wait for `process` to exit (it was asked to), else SIGTERM it, else SIGKILL it."""
    for step in ("wait", "terminate", "kill") if asked else ("terminate", "kill"):
        if process.poll() is not None:
            return
        if step != "wait":
            getattr(process, step)()
        try:
            process.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue
