"""`Was`: the services of one server process, what `skitai.was` stands for in a request.

Built when the server starts, on its loop thread. Plugins add their services (`was.get`,
`was.db`, ...) through the `skitai_register_services(was)` hook with `add_service`; the core's
own (`Thread`, `Process`, `Subprocess`) arrive the same way. The rest are methods here: the
corequest bundles, the shared state of the workers, and a few utilities.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import traceback as tb
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..services import current
from .cache import ResultCache
from .engine import Engine
from .shared import SharedLock, SharedTable
from .status import render_status
from .task import Mask
from .tasks import Tasks

if TYPE_CHECKING:
    from ..server import Server

app_log = logging.getLogger("skitai.app")

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "warning": logging.WARNING,
               "error": logging.ERROR, "fail": logging.ERROR, "expt": logging.ERROR, "critical": logging.CRITICAL}


class Was:
    Tasks = Tasks
    Mask = Mask

    def __init__(self, server: "Server") -> None:
        self.server = server
        config = server.config
        # skitai.run() allocated the table before forking; a server started otherwise (tests,
        # embedding) has no siblings and gets its own
        shared = server.kernel.shared or SharedTable(config.cache_keys, config.states)
        self.engine = Engine(server.loop, ResultCache(config.max_rcache), shared)
        self.services: dict[str, Any] = {}  # the services made
        self._factories: dict[str, Callable[[], Any]] = {}  # lazy services, made at their first use or not
        self._making = threading.RLock()
        self._temp_dir: str | None = None

    def __repr__(self) -> str:
        return f"<skitai.was of worker {self.server.worker_id}: {', '.join(self.service_names())}>"

    # plugin services
    def add_service(self, name: str, service: Any) -> None:
        """Make `service` available as `was.<name>` (a `Driver`, or any object)."""
        self._reserve(name)
        self.services[name] = service

    def add_lazy_service(self, name: str, factory: Callable[[], Any]) -> None:
        """Make `factory()` available as `was.<name>`, made at the first use of `was.<name>` (in
        the thread of the request that uses it first; one factory runs at a time, so services
        that share what the first of them makes find it made), and closed with the others if it
        was made. For a service whose libraries cost every worker memory: an app that never
        uses it does not pay for them."""
        self._reserve(name)
        self._factories[name] = factory

    def service_names(self) -> list[str]:
        """Every service name, made or not."""
        return sorted({*self.services, *self._factories})

    def _reserve(self, name: str) -> None:
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"was.{name}: a service name must be a public identifier")
        if name in self.services or name in self._factories or hasattr(type(self), name):
            raise ValueError(f"was.{name} is taken already")

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["services"][name]
        except KeyError:
            pass
        factories = self.__dict__.get("_factories", {})
        if name not in factories:
            names = sorted({*self.__dict__.get("services", ()), *factories})
            raise AttributeError(f"was has no {name!r}: no loaded plugin registers it "
                                 f"(services: {', '.join(names)})") from None
        with self._making:
            service = self.services.get(name)
            if service is None:  # not made meanwhile by another thread
                service = self.services[name] = self._factories[name]()
            return service

    def close(self) -> None:
        """The server stops: running corequests are cancelled, pools shut down."""
        self.engine.close()
        for service in self.services.values():
            close = getattr(service, "close", None)
            if callable(close):
                close()

    # state shared by the worker processes
    def setlu(self, *keys: str) -> float:
        """Mark the models named by `keys` (see `skitai.register_cache_keys`) as changed now."""
        return self.engine.shared.setlu(*keys)

    def getlu(self, *keys: str) -> float:
        """The latest change time of those models; give it as `use_cache=` to a corequest."""
        return self.engine.shared.getlu(*keys)

    def setgs(self, name: str, value: int) -> None:
        """Set the integer state `name` (see `skitai.register_states`) for every worker."""
        self.engine.shared.setgs(name, value)

    def getgs(self, name: str) -> int:
        return self.engine.shared.getgs(name)

    def get_lock(self, name: str = "__main__") -> SharedLock:
        """A lock by name, shared by the threads and the worker processes of this server."""
        return self.engine.shared.lock(name)

    # the current request
    def push(self, uri: str, headers: Sequence[tuple[str, str]] = ()) -> bool:
        """Push `GET uri` to the client with the current response (HTTP/2 server push).

        `uri` is a path of this site (or an absolute URL of the same origin); `headers` are
        extra request fields of the promised request. Call it before the response is complete.
        Returns whether a push was promised: False on HTTP/1.1, when the client disabled push,
        for another origin, or over the per-request or per-connection limit.
        """
        environ = getattr(current, "environ", None)
        push = environ.get("skitai.push") if environ is not None else None
        return bool(push is not None and push(uri, headers))

    # utilities
    def status(self) -> str:
        """This worker's state as an HTML page."""
        return render_status(self)

    def gentemp(self) -> str:
        """The full path of a new, empty temporary file of this server (the caller removes it)."""
        if self._temp_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="skitai-was-")
        fd, path = tempfile.mkstemp(dir=self._temp_dir)
        os.close(fd)
        return path

    def master_pid(self) -> int:
        """The process that supervises the server: the master of the workers, or this process
        where there is no fork and it serves alone."""
        return os.getppid() if self.server.supervised else os.getpid()

    def restart(self) -> None:
        """Ask the master for a graceful reload (SIGHUP): new workers with freshly imported
        apps take over, the current ones finish their requests. Needs a master process (every
        POSIX server has one): a server running alone has none to restart it."""
        if not self.server.supervised:
            raise RuntimeError("was.restart() reloads through the master process; this server runs without "
                               "one (no fork on this platform): restart it from outside")
        os.kill(self.master_pid(), signal.SIGHUP)

    def shutdown(self) -> None:
        """Ask the master to stop the server gracefully (SIGTERM)."""
        os.kill(self.master_pid(), signal.SIGTERM)

    def log(self, message: Any, type: str = "info") -> None:
        """Write `message` to the app log (logger `skitai.app`); `type` is debug, info, warn,
        error, fail, expt or critical, or a word of your own logged at info as a tag."""
        level = _LOG_LEVELS.get(type)
        if level is None:
            app_log.info("[%s] %s", type, message)
        else:
            app_log.log(level, "%s", message)

    def traceback(self, message: str = "") -> str:
        """Log the exception being handled, with its traceback, and return the traceback text."""
        text = "".join(tb.format_exception(*sys.exc_info())) if sys.exc_info()[0] else "no exception is being handled\n"
        app_log.error("%s%s", f"{message}\n" if message else "", text.rstrip())
        return text
