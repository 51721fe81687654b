"""Where Skitai's logs go: the console, or three files with `skitai.enable_file_logging()`.

    request.log  one line per request (`skitai.accesslog`)
    app.log      tracebacks of failing apps, `wsgi.errors`, the `skitai.app` logger (which
                 `was.log()` writes to) and the app's own `logging` when it set up none
    server.log   the server's messages (the `skitai` loggers: startup, worker exits, reloads,
                 stops, diagnostics) and, through fds 1 and 2, stray prints and C-level errors

Every process of a server (the master and its workers) appends to the same files. Each record
is one `write(2)` on a file opened with O_APPEND, so lines from different processes never mix
and nothing sits in a buffer when a process dies.

For logrotate, `reopen()` (SIGUSR1) opens each file again by its name and moves the new file
onto the old descriptor number with `dup2`: writers in other threads keep the same descriptor
and never see a closed file, and a write goes whole either to the rotated file or to the new one.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Iterable, TextIO

from .paths import log_dir

if TYPE_CHECKING:
    from .config import ServerConfig

SERVER_LOGGER = "skitai.server"
APP_LOGGER = "skitai.app"
FILE_FORMAT = "%(asctime)s %(levelname)s %(worker)s %(name)s: %(message)s"
DATE_FORMAT = "%Y.%m.%d %H:%M:%S"
CONSOLE_FORMAT = "skitai: %(message)s"  # server messages, as the console has always shown them
ROOT_CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFile:
    """A log file for appending, reopened in place by `reopen()`; usable as a text stream."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "replace")
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        self.write("".join(lines))

    def flush(self) -> None:
        """Nothing to do: every write went straight to the file."""

    def fileno(self) -> int:
        return self.fd

    def reopen(self) -> None:
        fd = self._open()
        try:
            os.dup2(fd, self.fd, inheritable=False)
        finally:
            os.close(fd)

    def close(self) -> None:
        os.close(self.fd)


class _WorkerField(logging.Filter):
    """Adds `worker` (M, W0, W1 ...) to the records written to the files."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = _worker_id
        return True


class FileLogging:
    """The three files of a server, and the logging handlers that write to them."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.request = LogFile(os.path.join(folder, "request.log"))
        self.app = LogFile(os.path.join(folder, "app.log"))
        self.server = LogFile(os.path.join(folder, "server.log"))

    def handler(self, stream: LogFile) -> logging.Handler:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(FILE_FORMAT, DATE_FORMAT))
        handler.addFilter(_WorkerField())
        return handler

    def redirect_std_streams(self) -> None:
        """Point fds 1 and 2 at server.log, so prints, warnings and what C code writes are kept
        (also once the process is detached from its terminal)."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass  # a closed or replaced stream: nothing of it can reach the console anyway
        os.dup2(self.server.fd, 1)
        os.dup2(self.server.fd, 2)
        try:
            sys.stdout.reconfigure(line_buffering=True)  # a print is one write, not a block later
        except (AttributeError, ValueError):
            pass  # stdout was replaced by something that is not a text file

    def reopen(self) -> None:
        for log_file in (self.request, self.app, self.server):
            log_file.reopen()
        self.redirect_std_streams()

    def close(self) -> None:
        for log_file in (self.request, self.app, self.server):
            log_file.close()


_files: FileLogging | None = None
_installed: list[tuple[logging.Logger, logging.Handler]] = []
_worker_id = "M"


def setup(config: "ServerConfig") -> None:
    """Send the logs to the console, or to the files when `config.file_logging` is on.

    Called once by `skitai.run()` before the socket is bound; forked workers inherit the result.
    A level already set on the `skitai.server` logger is kept; otherwise it is INFO, or DEBUG
    with `--devel` (which shows the `---gc` collections).
    """
    global _files
    for logger, handler in _installed:
        logger.removeHandler(handler)
    _installed.clear()
    if _files is not None:
        _files.close()
        _files = None
    skitai, server, app = (logging.getLogger(name) for name in ("skitai", SERVER_LOGGER, APP_LOGGER))
    root = logging.getLogger()
    if server.level == logging.NOTSET:
        server.setLevel(logging.DEBUG if config.devel else logging.INFO)
    if not config.file_logging:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        _install(server, console, propagate=False)
        skitai.propagate = app.propagate = True
        if not root.handlers:
            logging.basicConfig(level=logging.INFO, format=ROOT_CONSOLE_FORMAT)
        return
    folder = log_dir(config.log_path)
    _files = FileLogging(folder)
    print(f"skitai: logging to {folder}", file=sys.stderr, flush=True)
    _files.redirect_std_streams()
    server.propagate = True
    _install(skitai, _files.handler(_files.server), propagate=False)
    _install(app, _files.handler(_files.app), propagate=False)
    if not root.handlers:
        _install(root, _files.handler(_files.app), propagate=True)
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)


def _install(logger: logging.Logger, handler: logging.Handler, propagate: bool) -> None:
    logger.addHandler(handler)
    logger.propagate = propagate
    _installed.append((logger, handler))


def set_worker(worker_id: str) -> None:
    """Name this process in server.log and app.log lines (a forked worker calls it)."""
    global _worker_id
    _worker_id = worker_id


def reopen() -> None:
    """Reopen the log files of this process (logrotate's SIGUSR1); a no-op on the console."""
    if _files is not None:
        _files.reopen()
        logging.getLogger(SERVER_LOGGER).info("reopened the log files")


def reopen_on_signal(signum, frame) -> None:
    """`reopen()` as a `signal.signal` handler."""
    reopen()


def request_stream() -> TextIO | None:
    """Where request lines go: request.log, or None for the console (stdout)."""
    return _files.request if _files is not None else None  # type: ignore[return-value]


def errors_stream() -> TextIO:
    """`wsgi.errors`: app.log, or stderr on the console."""
    return _files.app if _files is not None else sys.stderr  # type: ignore[return-value]


def app_log(message: str, type: str = "info") -> None:
    """An app's own log line in app.log (the console without file logging): `type` is a level
    name (debug, info, warning, error, critical) or any word, logged at INFO as `[word] message`."""
    level = logging.getLevelName(type.upper())
    if isinstance(level, int):
        logging.getLogger(APP_LOGGER).log(level, "%s", message)
    else:
        logging.getLogger(APP_LOGGER).info("[%s] %s", type, message)
