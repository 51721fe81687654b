"""The running server: event loop, listening socket, connections, graceful stop.

One `Server` per process. It owns what every connection shares (settings, thread pool, access
log, the handler chain) and the once-a-second sweep that enforces connection timeouts, so no
connection needs a timer of its own.
"""
from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 -- the graceful stop's executor, loaded before root privileges go
import inspect
import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Callable, Sequence

from . import logs
from .accesslog import AccessLog
from .closing import closing_done
from .diagnostics import Diagnostics
from .exchange import Exchange, RequestHandler
from .listeners import Listener
from .plugins import call_hook_async, describe_origin
from .startup import StartupError, describe
from .statuses import error_body, error_headers, status_line
from .threadpool import ThreadPool

if TYPE_CHECKING:
    from .kernel import Kernel

log = logging.getLogger("skitai.server")


class NotFound(RequestHandler):
    def handle(self, exchange: Exchange) -> None:
        exchange.send_response(status_line(404), error_headers(), error_body(404))


NOT_FOUND = NotFound()
CLIENT_CLOSED_REQUEST = 499  # the request log's status for a client that left unanswered


class ResolveFailed(RequestHandler):
    """Stands in for the handler of a request whose `resolve()` raised: that request alone is
    answered 500, the connection and the other requests on it go on."""

    def handle(self, exchange: Exchange) -> None:
        exchange.send_response(status_line(500), error_headers(), error_body(500))


RESOLVE_FAILED = ResolveFailed()


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _bind(handler: RequestHandler, server: "Server") -> None:
    """A handler that cannot start (its database is down ...) stops the start, named."""
    try:
        handler.bind(server)
    except StartupError:
        raise
    except Exception as error:
        kind = type(handler)
        raise StartupError(f"request handler {kind.__module__}.{kind.__qualname__} failed to start: "
                           f"{describe(error)}") from error


class Server:
    def __init__(self, kernel: "Kernel", worker_id: str = "M", multiprocess: bool = False,
                 worker_index: int = 0, master_pid: int | None = None,
                 on_started: Callable[[], object] | None = None) -> None:
        kernel.configure()  # done by skitai.run() already; a server built in a test configures here
        self.kernel = kernel
        self.config = kernel.config
        self.hook = kernel.pm.hook
        self.handlers = kernel.handlers.handlers
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool: ThreadPool | None = None
        self.connections: set = set()
        # What a protocol gathers once per server from the final settings and registries instead
        # of on every accepted connection, keyed by the class that holds it (`H1Settings`).
        self.protocol_settings: dict = {}
        self.worker_id = worker_id
        # which of the master's `config.workers` processes this is (0 when serving alone); a
        # respawned worker takes the index of the one it replaces, so a plugin may give each
        # index sockets of its own (HTTP/3 steers datagrams to workers by connection ID)
        self.worker_index = worker_index
        self.multiprocess = multiprocess  # one of several worker processes
        self.supervised = worker_id != "M"  # a worker of a master process (even the only one)
        # the master that forked this worker: when it is gone (SIGKILL, OOM killer) the worker
        # is reparented and stops on its own instead of holding the port as an orphan
        self.master_pid = master_pid
        self.access_log = AccessLog(logs.request_stream(), worker_id=worker_id)
        self.diagnostics = Diagnostics(self.config, worker_id)
        self.requests_served = 0
        self._stop_requested: asyncio.Event | None = None
        self._listeners: list = []  # asyncio servers and plugins' acceptors: closed first on stop
        self.started = threading.Event()
        self.on_started = on_started  # called once serving (the master learns it: see supervisor)
        self.address: tuple | None = None
        self.was = None  # skitai.was of this process, set at start (skitai.builtin.corequest)

    # request path
    def resolve(self, exchange: Exchange) -> RequestHandler:
        """The handler that serves `exchange`: the first one that claims it, NOT_FOUND when
        none does, RESOLVE_FAILED when one raised (a defect of that handler, logged naming it,
        that must not take the connection and its other requests down)."""
        for handler in self.handlers:
            try:
                chosen = handler.resolve(exchange)
            except Exception:
                log.exception("request handler of %s failed to resolve %s %s",
                              describe_origin(self.kernel.pm, handler), exchange.method, exchange.target)
                return RESOLVE_FAILED
            if chosen is not None:
                return chosen
        return NOT_FOUND

    def log_exchange(self, exchange: Exchange) -> None:
        """The request log's line for a finished exchange, or an aborted one (status 499 when
        the client left before its response started, nginx's "client closed request")."""
        self.requests_served += 1
        if self.config.is_logged(exchange.path):
            now = time.monotonic()
            responded = exchange.responded_at or now
            status = exchange.status or (CLIENT_CLOSED_REQUEST if exchange.aborted else 0)
            self.access_log.record(
                exchange.client, exchange.method, exchange.target, exchange.version,
                exchange.headers, exchange.body.received, status, exchange.bytes_sent,
                len(self.connections), responded - exchange.started_at, now - responded, exchange.transaction)

    def log_protocol_error(self, connection, status: int, sent: int) -> None:
        if self.config.access_log:
            self.access_log.record(connection.client, "-", "-", "-", [], 0, status, sent,
                                   len(self.connections), 0.0, 0.0)

    def sockets(self, name: str) -> list:
        """The sockets a plugin registered under `name` (`skitai_register_sockets`), bound by
        the master and shared by every worker."""
        return self.kernel.sockets.get(name)

    def add_acceptor(self, acceptor) -> None:
        """A plugin's own way in (a QUIC endpoint): `acceptor.close()` is called when a graceful
        stop begins, with the TCP listeners, to take no new connections (see
        `skitai_server_start`)."""
        self._listeners.append(acceptor)

    def connection_opened(self, connection) -> None:
        self.connections.add(connection)

    def connection_closed(self, connection) -> None:
        self.connections.discard(connection)

    # lifecycle
    def serve(self, listeners: Sequence[Listener], install_signals: bool = True) -> None:
        """Serve the bound `listeners` until SIGINT/SIGTERM or `request_stop()`, then stop
        gracefully.

        `install_signals=False` lets tests run a server on a thread other than the main one.
        """
        self.loop = new_event_loop()
        try:
            self.loop.run_until_complete(self._main(listeners, install_signals))
        finally:
            self.loop.close()

    async def _main(self, listeners: Sequence[Listener], install_signals: bool) -> None:
        config = self.config
        self._stop_requested = asyncio.Event()
        self.pool = (ThreadPool(config.threads, job_context=self.diagnostics.job_context, loop=self.loop)
                     if config.threads > 0 else None)
        for handler in self.handlers:
            _bind(handler, self)
        self._listeners = [await listener.start(self) for listener in listeners]
        if install_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.loop.add_signal_handler(signum, self.request_stop)
            self.loop.add_signal_handler(signal.SIGUSR1, logs.reopen)  # logrotate
        await call_hook_async(self.hook.skitai_server_start, server=self)
        self.address = listeners[0].sock.getsockname()[:2]
        for listener in listeners:
            host, port = listener.sock.getsockname()[:2]
            log.info("serving on %s://%s:%s/ (threads=%s)", listener.scheme, host, port, config.threads)
        self.diagnostics.start()
        self.started.set()
        if self.on_started is not None:
            self.on_started()
        sweeper = self.loop.create_task(self._sweep())
        await self._stop_requested.wait()
        await self._stop_gracefully()  # the sweep goes on meanwhile: it closes what has idled
        sweeper.cancel()

    def request_stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop_requested.set)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for connection in list(self.connections):
                connection.check_timeout(now)
            self.access_log.flush()
            self.diagnostics.tick()
            self._check_master()

    def _check_master(self) -> None:
        """Stop gracefully, like on SIGTERM, once the master is gone: a reparented worker
        (`getppid()` is no longer the master's pid) has nobody to supervise or stop it."""
        if (self.master_pid is not None and os.getppid() != self.master_pid
                and not self._stop_requested.is_set()):
            log.warning("the master (pid %d) is gone: stopping", self.master_pid)
            self._stop_requested.set()

    async def _finish_closing(self, outcomes: list) -> None:
        """Await what `skitai_server_stop` implementations returned to finish on the loop (a
        client pool's asynchronous close) before the loop closes, within the shutdown timeout."""
        closing = [outcome for outcome in outcomes if inspect.isawaitable(outcome)]
        if not closing:
            return
        try:
            results = await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True),
                                             self.config.shutdown_timeout)
        except asyncio.TimeoutError:
            log.warning("closing on stop took longer than %s s: given up", self.config.shutdown_timeout)
            return
        for result in results:
            if isinstance(result, Exception):
                log.error("closing on stop failed: %s", describe(result))

    async def _stop_gracefully(self) -> None:
        """Every connection is asked to `shutdown()`: one with no exchange in flight closes at
        once, the others after their exchanges. The stop waits until every connection has
        closed its side and written everything out (`closing.closing_done`), at most
        `shutdown_timeout`, then drops what is left: lingering closes and TLS shutdowns that
        wait for an idle peer included, so an idle client cannot hold the stop."""
        for listener in self._listeners:
            listener.close()
        for connection in list(self.connections):
            connection.shutdown()
        deadline = time.monotonic() + self.config.shutdown_timeout
        while (not all(closing_done(connection) for connection in self.connections)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            if connection.closed:  # closed its side: its linger or TLS shutdown is cut short
                connection.transport.abort()
            else:  # still serving at the deadline
                connection.abort()
        await asyncio.sleep(0)
        if self.pool is not None:
            await self.loop.run_in_executor(None, self.pool.shutdown, 1.0)
        await self._finish_closing(self.hook.skitai_server_stop(server=self))
        self.access_log.close()
        self.diagnostics.stop()
        log.info("stopped")
