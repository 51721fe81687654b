"""Test helpers shared by every distribution's tests: free ports, a server in a subprocess
running a real script, and a server on a thread for tests that define apps inline."""
from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .body import ClientDisconnected
from .config import ServerConfig
from .exchange import Exchange, RequestHandler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM a process a test started and wait for it; SIGKILL when it has not ended within
    `timeout`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def http_get(port: int, path: str = "/", timeout: float = 10.0) -> tuple[int, bytes]:
    """GET `path` from 127.0.0.1:`port` on a connection of its own: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def read_until_closed(port: int, *pieces: bytes, timeout: float = 10.0) -> bytes:
    """Send `pieces` to 127.0.0.1:`port` on a connection of its own and return everything the
    server sends until it closes the connection (a reset counts as closing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for piece in pieces:
            sock.sendall(piece)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not chunk:
                return received
            received += chunk


class GatedApp:
    """A WSGI app for servers with one thread, to fill and watch the pool: `/hold` keeps the
    thread until `release()`, `/upload` reads its whole body (what the read raised is kept in
    `errors`), `/stream` sends a body far larger than any socket buffer (`stream_closed` is set
    when its iterable is closed); every other path answers its own path. Every call is recorded
    in `calls`; `held` and `reading` tell that a call got that far."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.errors: list[BaseException] = []
        self.held = threading.Event()
        self.reading = threading.Event()
        self.stream_closed = threading.Event()
        self._release = threading.Event()

    def release(self) -> None:
        self._release.set()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        path = environ["PATH_INFO"]
        self.calls.append(path)
        if path == "/hold":
            self.held.set()
            self._release.wait(30)
        elif path == "/upload":
            self.reading.set()
            try:
                environ["wsgi.input"].read()
            except Exception as error:
                self.errors.append(error)
                raise
        elif path == "/stream":
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return self._stream()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [path.encode()]

    def _stream(self):
        try:
            for _ in range(10_000):
                yield b"x" * 65536
        finally:
            self.stream_closed.set()


class RelayHandler(RequestHandler):
    """A handler on the loop thread that streams a request's body back as its response body,
    the way a proxy relays: `await body.read_async(chunk)`, `send_data`, `await drain()`, so a
    client that sends fast and reads slowly stops being read instead of filling the server's
    memory. Serves `path` only (register it with `kernel.handlers.add(..., priority=1)`).
    `outcomes` gets "done" or the name of the call that raised `ClientDisconnected` ("read",
    "drain"); `relayed` counts the bytes sent back; `trailers` gets each finished request's
    trailer fields (`body.trailers`), which are sent back as the response's trailers."""

    def __init__(self, path: str = "/relay", chunk: int = 65536) -> None:
        self.path = path
        self.chunk = chunk
        self.outcomes: list[str] = []
        self.relayed = 0
        self.trailers: list[list[tuple[str, str]]] = []
        self._tasks: set = set()  # the loop keeps only weak references to tasks

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        return self if exchange.path == self.path else None

    def handle(self, exchange: Exchange) -> None:
        task = exchange.loop.create_task(self._relay(exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, exchange: Exchange) -> None:
        exchange.send_head("200 OK", [("Content-Type", "application/octet-stream")])
        step = "read"
        try:
            while True:
                step = "read"
                data = await exchange.body.read_async(self.chunk)
                if not data:
                    break
                exchange.send_data(data)
                self.relayed += len(data)
                step = "drain"
                await exchange.drain()
        except ClientDisconnected:
            self.outcomes.append(step)
            exchange.abort(cancelled=True)
            return
        trailers = list(exchange.body.trailers)  # complete once read_async returned b""
        self.trailers.append(trailers)
        if trailers:
            exchange.set_trailers(trailers)
        exchange.finish()
        self.outcomes.append("done")


class TunnelEchoHandler(RequestHandler):
    """Answers every CONNECT with `200` and `open_tunnel`, then echoes the tunnel's bytes (what a
    forward proxy does with a tunnel, the far end being this echo). `targets` records the
    CONNECT targets; `lost` is set when a tunnel ends."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.lost = threading.Event()

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        return self if exchange.method == "CONNECT" else None

    def handle(self, exchange: Exchange) -> None:
        self.targets.append(exchange.target)
        exchange.open_tunnel("200 Connection Established", [], _Echo(self.lost))


class _Echo(asyncio.Protocol):
    def __init__(self, lost: threading.Event) -> None:
        self.lost = lost
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # the transport closes our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


def fuzz_examples(default: int) -> int:
    """How many examples a fuzz test runs: `default` (a few seconds' worth, for every suite run),
    or the `SKITAI_FUZZ_EXAMPLES` environment variable for a long run (the `fuzz` nox session)."""
    return int(os.environ.get("SKITAI_FUZZ_EXAMPLES") or default)


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """The first true value `predicate()` returns, polling every 50 ms; AssertionError when none
    came within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def in_ci() -> bool:
    """Whether this is a CI run (`CI=true`, as CI runs `.ci/run`), where every tool the tests
    need has been installed."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def requires(missing: str | None) -> Any:
    """A pytest mark for tests that need something outside Python (a command-line tool, a
    browser): `missing` says what is missing here and how CI installs it, or None when nothing
    is. A test whose tool is missing is skipped with that reason (shown by `pytest -rs`, as nox
    runs it); under CI it cannot be: the mark raises, so the module fails to collect, naming the
    tool, rather than its tests silently not running."""
    import pytest

    if missing is None:
        return pytest.mark.skipif(False, reason="")
    if in_ci():
        raise RuntimeError(f"CI=true but {missing}: .ci/run must install it")
    return pytest.mark.skip(reason=missing)


def requires_commands(*commands: str, install: str) -> Any:
    """`requires` for command-line tools looked up on PATH; `install` is how CI installs them
    (e.g. "apt-get install nghttp2-client")."""
    absent = [command for command in commands if shutil.which(command) is None]
    return requires(f"{' and '.join(absent)} not installed (CI: {install})" if absent else None)


@dataclass
class Certificates:
    """PEM files of a throwaway CA and a server certificate it signed."""

    ca: str    # what clients trust (httpx verify=, curl --cacert, openssl -CAfile)
    cert: str  # the server's certificate chain
    key: str   # its private key, encrypted with `passphrase` when there is one
    passphrase: str | None = None


def make_certificates(directory: str, *hostnames: str, passphrase: str | None = None) -> Certificates:
    """A CA and a certificate for `hostnames` (default localhost and 127.0.0.1) written into
    `directory`, made with trustme, a test dependency."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    issued = ca.issue_cert(*(hostnames or ("localhost", "127.0.0.1")))
    files = Certificates(*(os.path.join(directory, name) for name in ("ca.pem", "cert.pem", "key.pem")),
                         passphrase=passphrase)
    key = issued.private_key_pem.bytes()
    if passphrase is not None:
        encryption = serialization.BestAvailableEncryption(passphrase.encode())
        key = serialization.load_pem_private_key(key, None).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    contents = {files.ca: ca.cert_pem.bytes(), files.key: key,
                files.cert: b"".join(blob.bytes() for blob in issued.cert_chain_pems)}
    for path, data in contents.items():
        with open(path, "wb") as file:
            file.write(data)
    return files


class ServerProcess:
    """`python SCRIPT --port=N ARGS...` in a subprocess; a context manager that stops it with
    SIGTERM (SIGKILL after `stop_timeout`) and keeps its combined output in `.output`."""

    def __init__(self, script: str, *args: str, port: int | None = None, env: dict | None = None,
                 startup_timeout: float = 60.0, stop_timeout: float = 15.0) -> None:
        self.script = os.path.abspath(script)
        self.args = args
        self.port = port or free_port()
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None
        self._log = tempfile.TemporaryFile()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "ServerProcess":
        self.process = subprocess.Popen(
            [sys.executable, self.script, f"--port={self.port}", *self.args],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        try:
            wait_for_port(self.port, self.startup_timeout, self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"server did not start ({exc}):\n{self.output}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int | None:
        if self.process is not None:
            stop_process(self.process, self.stop_timeout)
            self.returncode = self.process.returncode
        return self.returncode

    @property
    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


NGINX_CONF = """worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
{http}
}}
"""


class Nginx:
    """nginx in the foreground as a peer of a test or a benchmark (a proxy in front of Skitai, or
    one to compare with): a context manager that writes its configuration under `directory`
    (every file nginx writes goes there too, so it runs unprivileged), starts it, waits for
    `port` and stops it. `http` is what goes inside the `http` block (upstreams, servers)."""

    def __init__(self, directory: str, http: str, port: int, connections: int = 256) -> None:
        self.directory = str(directory)
        self.port = port
        self.conf = os.path.join(self.directory, "nginx.conf")
        with open(self.conf, "w") as file:
            file.write(NGINX_CONF.format(directory=self.directory, connections=connections, http=http))
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    def __enter__(self) -> "Nginx":
        self.process = subprocess.Popen(["nginx", "-c", self.conf, "-p", self.directory],
                                        stdout=subprocess.DEVNULL, stderr=self._log)
        try:
            wait_for_port(self.port, 20, self.process)
        except (RuntimeError, TimeoutError) as exc:
            self.__exit__()
            self._log.seek(0)
            raise RuntimeError(f"nginx did not start ({exc}):\n{self._log.read().decode('utf-8', 'replace')}") from None
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        stop_process(self.process)


class ServerThread:
    """A Skitai server on a background thread of the test process, with its own kernel.

    `mount(...)` like `skitai.mount`, then use as a context manager; `port` is free and bound
    on 127.0.0.1 before the thread starts. Given `ssl_certfile` and `ssl_keyfile` (see
    `make_certificates`) it serves HTTPS, offering the ALPN ids of `kernel.protocols` as they
    are when the context manager is entered.
    """

    def __init__(self, **settings: Any) -> None:
        from .kernel import Kernel
        from .listeners import bind_http_socket

        self.kernel = Kernel(ServerConfig(**{"access_log": False, **settings}), entry_points=False)
        self._sock = bind_http_socket("127.0.0.1", 0)
        self.port = self._sock.getsockname()[1]
        self.server = None
        self._thread: threading.Thread | None = None

    def mount(self, point: str, obj: Any, app_name: str = "app", pref: Any = None) -> "ServerThread":
        self.kernel.mount(point, obj, app_name, pref)
        return self

    def url(self, path: str = "/") -> str:
        scheme = "https" if self.kernel.config.ssl_certfile else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "ServerThread":
        from .listeners import Listener
        from .server import Server
        from .tls import context_for

        self.kernel.configure()  # the plugins register their handlers, protocols and sockets
        self.kernel.sockets.bind_all()
        listener = Listener(self._sock, context_for(self.kernel))  # after tests registered protocols
        self.server = Server(self.kernel)
        self._thread = threading.Thread(target=self.server.serve, args=([listener], False), daemon=True)
        self._thread.start()
        if not self.server.started.wait(10):
            raise TimeoutError("test server did not start")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self._thread.is_alive():
            return  # stopped already (a test may stop it itself)
        self.server.request_stop()
        self._thread.join(self.kernel.config.shutdown_timeout + 5)



class StartedServers:
    """The servers a test starts, all stopped at its end: the body of a pytest `serve` fixture.

    `servers(app | (point, obj)..., **settings)` mounts and starts a server made by
    `make_server(**settings)` (a ServerThread, or one with plugins registered), with
    `handlers` (request handlers under test) asked before anything else; `stop()` stops every
    one of them."""

    def __init__(self, make_server: Callable[..., ServerThread] = ServerThread,
                 handlers: tuple = ()) -> None:
        self.make_server = make_server
        self.handlers = handlers
        self.started: list[ServerThread] = []

    def __call__(self, *mounts: Any, **settings: Any) -> ServerThread:
        server = self.make_server(**settings)
        for handler in self.handlers:
            server.kernel.handlers.add(handler, priority=1)
        if mounts and not isinstance(mounts[0], tuple):
            mounts = (("/", mounts[0]),)
        for point, obj in mounts:
            server.mount(point, obj)
        server.__enter__()
        self.started.append(server)
        return server

    def stop(self) -> None:
        for server in self.started:
            server.__exit__(None, None, None)
