"""`python app.py start | stop | restart | status` (and `-d`, `-s`, `-r`): the self-daemonizing
server of the manual's "Run as Daemon", with LSB exit codes.

`start` binds in the foreground (so a taken port or a bad setting is reported on the terminal),
then detaches: double fork with `setsid`, stdio away from the terminal, a pid file written
atomically. The process that typed `start` waits until the daemon serves (or fails) and exits
with the verdict and the pid.

A SIGHUP reload re-executes the master in the same process with the same arguments (`-d`
included). The daemon marks itself in the environment with its pid, so the re-executed master
knows it is already detached: it neither forks again nor touches the pid file, only arms its
removal at exit again (exec forgets `atexit`).
"""
from __future__ import annotations

import atexit
import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING

from .paths import log_dir, process_label, run_dir, script_path
from .pidfile import AlreadyRunning, PidFile, is_alive
from .plugin import hookimpl

if TYPE_CHECKING:
    from .config import ServerConfig
    from .kernel import Kernel

DAEMON_ENV = "SKITAI_DAEMON_PID"  # set to the daemon's pid: a re-executed master is already one
START_TIMEOUT = 30.0  # how long `start` waits for the daemon to serve
STOP_MARGIN = 10.0    # beyond shutdown_timeout: the master gives its workers shutdown_timeout + 5
PID_FILE = "skitai.pid"

# LSB exit codes (init script actions)
OK, FAILED, PRIVILEGE = 0, 1, 4
STATUS_RUNNING, STATUS_DEAD_WITH_PIDFILE, STATUS_NOT_RUNNING = 0, 1, 3


def pid_file(config: "ServerConfig") -> PidFile:
    return PidFile(os.path.join(run_dir(), PID_FILE), process_label(config.name), script_path())


def stop_timeout(config: "ServerConfig") -> float:
    """How long a stop may take before it counts as failed (the systemd unit uses it too)."""
    return config.shutdown_timeout + STOP_MARGIN


def is_reexecuted() -> bool:
    """True in a daemon's master re-executed by a SIGHUP reload (same pid, already detached)."""
    return os.environ.get(DAEMON_ENV) == str(os.getpid())


def _say(message: str, error: bool = False) -> None:
    print(f"skitai: {message}", file=sys.stderr if error else sys.stdout, flush=True)


# status, stop
def status(config: "ServerConfig") -> int:
    pidfile = pid_file(config)
    label = process_label(config.name)
    owner = pidfile.owner()
    if owner is not None:
        _say(f"{label} is running (pid {owner.pid})")
        return STATUS_RUNNING
    stale = pidfile.read()
    if stale is not None:
        _say(f"{label} is not running (stale pid file {pidfile.path} names pid {stale})")
        return STATUS_DEAD_WITH_PIDFILE
    _say(f"{label} is not running")
    return STATUS_NOT_RUNNING


def stop(config: "ServerConfig") -> int:
    """SIGTERM to the server the pid file names, then wait for it to exit."""
    pidfile = pid_file(config)
    label = process_label(config.name)
    owner = pidfile.owner()
    if owner is None:
        stale = pidfile.read()
        if stale is not None:
            pidfile.remove(stale)
        _say(f"{label} is not running")
        return OK
    import psutil  # a live owner was found, so pidfile has imported it already
    try:
        owner.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        pass
    except psutil.AccessDenied:
        _say(f"no permission to stop {label} (pid {owner.pid})", error=True)
        return PRIVILEGE
    timeout = stop_timeout(config)
    deadline = time.monotonic() + timeout
    while is_alive(owner):
        if time.monotonic() >= deadline:
            _say(f"{label} (pid {owner.pid}) did not stop within {timeout:g} s", error=True)
            return FAILED
        time.sleep(0.05)
    pidfile.remove(owner.pid)  # the server removes it itself, unless it was killed
    _say(f"{label} stopped (pid {owner.pid})")
    return OK


def refuse_if_running(config: "ServerConfig") -> int | None:
    """Before `start`: an exit code when a live server owns the pid file, else None."""
    owner = pid_file(config).owner()
    if owner is None:
        return None
    _say(f"{process_label(config.name)} is already running (pid {owner.pid}); "
         "use `restart` to replace it", error=True)
    return FAILED


def adopt(config: "ServerConfig") -> None:
    """In a re-executed daemon master: keep logging to files and remove the pid file at exit."""
    config.file_logging = True
    atexit.register(pid_file(config).remove, os.getpid())


# start
class ServingNotice:
    """Tells the waiting `start` command that the daemon serves: the first process to start
    serving (the daemon itself, or one of its workers) writes a line into the pipe. It runs
    after the other plugins' `skitai_server_start`, so one of them failing is no success."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    @hookimpl(trylast=True)
    def skitai_server_start(self, server) -> None:
        if self.fd is None:
            return
        _send(self.fd, "serving")
        os.close(self.fd)
        self.fd = None


def _send(fd: int, line: str) -> None:
    try:
        os.write(fd, line.encode("utf-8", "replace") + b"\n")
    except OSError:
        pass  # the waiting command is gone (timed out or interrupted): nothing to tell


def detach(kernel: "Kernel") -> None:
    """Become the daemon. Returns only in the daemon; the calling process exits with the
    daemon's verdict."""
    config = kernel.config
    folder = log_dir(config.log_path)  # decided here, so a folder problem shows on the terminal
    pidfile = pid_file(config)
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child:
        os.close(write_end)
        os.waitpid(child, 0)  # the middle process exits at once
        code = _report_start(read_end, config, folder)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # not sys.exit: the app's atexit handlers belong to the daemon
    os.close(read_end)
    os.setsid()
    if os.fork():
        os._exit(0)  # the daemon is not a session leader: it can never get a terminal again
    _become_daemon(kernel, pidfile, write_end)


def _become_daemon(kernel: "Kernel", pidfile: PidFile, notify: int) -> None:
    from .supervisor import set_title

    pid = os.getpid()
    os.umask(0o022)
    set_title(f"{pidfile.label}: master")  # before the pid file, which is checked by this title
    try:
        pidfile.create(pid)
    except (AlreadyRunning, OSError) as error:
        _send(notify, f"failed {error}")
        os._exit(FAILED)
    atexit.register(pidfile.remove, pid)
    os.environ[DAEMON_ENV] = str(pid)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the master's own handler: a reload
    _send(notify, f"pid {pid}")
    _detach_stdio()  # file logging (logs.setup, right after) points fds 1 and 2 at server.log
    kernel.pm.register(ServingNotice(notify), name="skitai.daemon.serving-notice")


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _read_lines(fd: int, deadline: float):
    """Lines the daemon sends, until it closes the pipe; TimeoutError at the deadline."""
    buffer = b""
    while True:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode("utf-8", "replace")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if not select.select([fd], [], [], left)[0]:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        buffer += chunk


def _report_start(fd: int, config: "ServerConfig", folder: str) -> int:
    label = process_label(config.name)
    server_log = os.path.join(folder, "server.log")
    pid = None
    try:
        for line in _read_lines(fd, time.monotonic() + START_TIMEOUT):
            word, _, rest = line.partition(" ")
            if word == "pid":
                pid = int(rest)
            elif word == "serving":
                _say(f"{label} started (pid {pid}), logs in {folder}")
                return OK
            elif word == "failed":
                _say(f"{label} did not start: {rest}", error=True)
                return FAILED
    except TimeoutError:
        _say(f"{label} (pid {pid}) is not serving after {START_TIMEOUT:g} s; see {server_log}", error=True)
        return FAILED
    _say(f"{label} exited before serving; the end of {server_log}:\n{_tail(server_log)}", error=True)
    return FAILED


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - 16384))
            text = file.read().decode("utf-8", "replace")
    except OSError as error:
        return f"({error})"
    return "\n".join(text.splitlines()[-lines:])
