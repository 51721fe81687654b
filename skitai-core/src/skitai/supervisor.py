"""The master process: binds once, forks workers that share the listening sockets, replaces a
worker that dies, reloads them on SIGHUP (once the new code has passed a check, see
`preflight`), runs the auto-reloader when asked (see `reloader`) and the processes plugins
registered (see `processes`), and stops them all on SIGTERM or SIGINT.

One loop and one table of signals, like gunicorn's arbiter: signal handlers only record what
arrived (and wake the loop through a pipe); the loop does the work.
"""
from __future__ import annotations

import functools
import logging
import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING

from . import logs
from .listeners import inheritable
from .paths import process_label
from .plugin_sockets import PLUGIN_FD_ENV
from .preflight import Preflight, script_command
from .processes import ProcessWatch
from .reloader import Reloader  # imported before a privilege drop may put the stdlib out of reach
from .startup import FAILURE, describe, report
from .tls import unreadable_files

if TYPE_CHECKING:
    from .kernel import Kernel
    from .listeners import Listener

RESPAWN_CHECK = 0.2  # seconds between checks for dead workers: a death is answered well within 1 s
RETIRE_DELAY = 0.5   # after a reload, how long old workers keep accepting beside the new ones,
RETIRE_WAIT = 30.0   # once these all serve, or at the latest (see _retire_once_ours_serve)
LISTEN_FD_ENV = "SKITAI_LISTEN_FD"      # the sockets a reloaded master inherits
RETIRING_ENV = "SKITAI_RETIRING_PIDS"   # the workers it asks to drain and stop
LOADED_AT_ENV = "SKITAI_LOADED_AT"      # when it re-executed itself: files written later are news
# A worker that fails before it serves exits with this status: the master then stops instead of
# starting the same failure again and again (a handler that cannot bind, a plugin that fails)
WORKER_BOOT_ERROR = 3
MASTER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1)

log = logging.getLogger("skitai.server")


def set_title(title: str) -> None:
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle(title)


class CpuWatch:
    """`skitai.set_worker_critical_point`: names the workers whose CPU use stayed above the
    threshold for `continuous` checks in a row (psutil, imported only when the watch is on)."""

    def __init__(self, percent: float, continuous: int, interval: float) -> None:
        import psutil

        self._psutil = psutil
        self.percent = percent
        self.continuous = continuous
        self.interval = interval
        self.next_check = time.monotonic() + interval
        self._processes: dict[int, object] = {}
        self._strikes: dict[int, int] = {}

    def overloaded(self, pids: list[int]) -> list[int]:
        self.next_check = time.monotonic() + self.interval
        found = []
        for pid in pids:
            process = self._processes.get(pid)
            try:
                if process is None:
                    process = self._processes[pid] = self._psutil.Process(pid)
                    process.cpu_percent(None)  # the first reading only sets the baseline
                    continue
                busy = process.cpu_percent(None) >= self.percent
            except self._psutil.NoSuchProcess:
                continue
            self._strikes[pid] = self._strikes.get(pid, 0) + 1 if busy else 0
            if self._strikes[pid] >= self.continuous:
                found.append(pid)
        for pid in list(self._processes):
            if pid not in pids:
                self._processes.pop(pid)
                self._strikes.pop(pid, None)
        return found


class WorkerSupervisor:
    def __init__(self, kernel: "Kernel", listeners: list["Listener"], workers: int) -> None:
        self.kernel = kernel
        self.listeners = listeners
        self.workers = workers
        self.label = process_label(kernel.config.name)
        self.children: dict[int, int] = {}  # pid -> worker index
        self.retiring: set[int] = set()     # the previous master's workers, draining
        self.unretired: list[int] = []      # those of them not asked to drain yet
        self.retire_by = 0.0
        self.serving: set[int] = set()      # indexes of our workers that have started serving
        self.stopping = False
        self.reload_requested = False
        self.reopening = False
        self.exit_status = 0
        self.preflight: Preflight | None = None
        self.reloader = None  # skitai.reloader.Reloader when files are watched
        self.processes = ProcessWatch(kernel.processes)  # the plugins' processes
        config = kernel.config
        self.cpu_watch = (CpuWatch(config.critical_cpu_percent, config.critical_continuous,
                                   config.critical_interval) if config.critical_interval > 0 else None)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._serving_read, self._serving_write = os.pipe()  # a worker writes its index once serving
        os.set_blocking(self._serving_read, False)

    def run(self) -> int:
        set_title(f"{self.label}: master")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        signal.signal(signal.SIGUSR1, self._on_reopen_signal)
        signal.signal(signal.SIGCHLD, self._wake)
        for index in range(self.workers):
            self._spawn(index)
        self._retire_previous_workers()
        self._start_reloader()
        while not self.stopping:
            self.processes.check()
            if self.reload_requested:
                self._check_new_code()
            if self.preflight is not None:
                self._reload_once_checked()
            if self.reopening:
                self._reopen_logs()
            self._reap_and_respawn()
            self._retire_once_ours_serve()
            self._watch_reloader()
            if self.cpu_watch is not None and time.monotonic() >= self.cpu_watch.next_check:
                self._replace_overloaded()
            select.select([self._wake_read, self._serving_read], [], [], RESPAWN_CHECK)
            self._drain_wake_pipe()
        return self._stop_workers()

    # graceful reload
    def _check_new_code(self) -> None:
        """SIGHUP: first run the script once more as a check (see `preflight`). A SIGHUP that
        arrives while a check runs starts it over, so the files it judges are the latest."""
        self.reload_requested = False
        unreadable = unreadable_files(self.kernel.config)
        if unreadable:
            # The new master would fail to start and leave these workers without a master.
            log.error("not reloading: cannot read %s without root privileges; restart the server "
                      "instead", ", ".join(unreadable))
            return
        command = script_command()
        if command is None:
            log.warning("SIGHUP ignored: no script to run again")
            return
        if self.preflight is not None:
            self.preflight.close()
        self.preflight = Preflight(command)

    def _reload_once_checked(self) -> None:
        """Reload when the check has passed; when it failed, say why and keep serving."""
        status = self.preflight.status()
        if status is None:
            return
        preflight, self.preflight = self.preflight, None
        if status == 0:
            preflight.close()
            self._reload(preflight.process.args)  # does not return
        log.error("reload cancelled, the new code failed to start (exit status %s); the running "
                  "workers go on serving the previous version:\n%s", status, preflight.output())
        preflight.close()

    def _reload(self, command: list[str]) -> None:
        """Run the script again in this process (same pid, so the workers stay our children)
        with the listening sockets inherited. The new master imports the apps afresh, starts new
        workers, then asks these ones to drain and stop; the sockets (the plugins' too) never
        close, so no connection is refused meanwhile."""
        self._stop_reloader()
        self.processes.before_reload()
        os.environ[LISTEN_FD_ENV] = inheritable(self.listeners)
        os.environ[PLUGIN_FD_ENV] = self.kernel.sockets.inheritable()
        os.environ[RETIRING_ENV] = ",".join(str(pid) for pid in [*self.children, *self.retiring])
        os.environ[LOADED_AT_ENV] = repr(time.time())
        log.info("reloading")
        sys.stdout.flush()
        # Ignored signals stay ignored across exec: a SIGHUP before the new master has set its
        # handler must not end it (the default action of SIGHUP).
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.execv(command[0], command)

    def _retire_previous_workers(self) -> None:
        pids = os.environ.pop(RETIRING_ENV, "")
        if not pids:
            return
        self.unretired = [int(pid) for pid in pids.split(",")]
        self.retiring.update(self.unretired)
        self.retire_by = time.monotonic() + RETIRE_WAIT

    def _retire_once_ours_serve(self) -> None:
        """Ask the previous master's workers to drain and stop RETIRE_DELAY after every new
        worker serves, so that a new connection always finds a worker that takes it and one just
        taken by an old worker gets through its start. TCP connections would wait in the shared
        listen queue, but a plugin's socket need not be shared: HTTP/3 datagrams of new
        connections reach the workers whose steering was attached last, which a worker does as
        it starts; until then they reach the old workers, and one that is leaving drops them
        (the client retransmits after a backed-off delay: 20 s stalls were seen on a loaded
        machine, whose new workers took longer to start than the half second after their fork
        that this used to wait). After RETIRE_WAIT they are asked anyway: a new worker that
        never serves must not keep the old code serving forever."""
        while True:
            try:
                started = os.read(self._serving_read, 4096)
            except BlockingIOError:
                break
            self.serving.update(int(index) for index in started.split())
        if not self.unretired:
            return
        now = time.monotonic()
        if len(self.serving) >= self.workers:
            self.retire_by = min(self.retire_by, now + RETIRE_DELAY)
        if now < self.retire_by:
            return
        for pid in self.unretired:
            if pid in self.retiring:  # not reaped already (then the pid may be another's)
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        self.unretired = []

    def _tell_serving(self, index: int) -> None:
        """In a worker that has started serving: tell the master (see _retire_once_ours_serve).
        A reload may have re-executed the master meanwhile, closing the pipe: that master no
        longer waits for this worker, which it retires."""
        try:
            os.write(self._serving_write, b"%d\n" % index)
        except OSError:
            pass

    def _reopen_logs(self) -> None:
        """SIGUSR1 (logrotate moved the files): reopen ours, then have every worker reopen its."""
        self.reopening = False
        logs.reopen()
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass  # reaped and replaced by the loop; the new one opens the new files

    # the reloader: a child process that sends us SIGHUP when a watched file changes
    def _start_reloader(self) -> None:
        reloaded_at = os.environ.pop(LOADED_AT_ENV, None)
        self.reloader = Reloader.for_kernel(self.kernel, float(reloaded_at) if reloaded_at else None)
        if self.reloader is not None:
            self.reloader.start()

    def _watch_reloader(self) -> None:
        if self.reloader is None or self.reloader.exit_status() is None:
            return
        log.warning("the reloader exited (status %s); file changes are no longer watched",
                    self.reloader.exit_status())
        self.reloader = None

    def _stop_reloader(self) -> None:
        if self.reloader is not None:
            self.reloader.stop()
            self.reloader = None

    # signals: record and wake, nothing else
    def _on_reload_signal(self, signum, frame) -> None:
        self.reload_requested = True
        self._wake(signum, frame)

    def _on_reopen_signal(self, signum, frame) -> None:
        self.reopening = True
        self._wake(signum, frame)

    def _on_stop_signal(self, signum, frame) -> None:
        self.stopping = True
        self._wake(signum, frame)

    def _wake(self, signum, frame) -> None:
        try:
            os.write(self._wake_write, b"!")
        except BlockingIOError:
            pass

    def _drain_wake_pipe(self) -> None:
        while select.select([self._wake_read], [], [], 0)[0]:
            os.read(self._wake_read, 4096)

    # workers
    def _spawn(self, index: int) -> None:
        # Signals stay blocked across the fork until the child has dropped the master's
        # handlers: a stop signal in between would otherwise run the master's handler in the
        # child, which would then never stop.
        signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
        master_pid = os.getpid()
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
            self.children[pid] = index
            return
        status = WORKER_BOOT_ERROR
        server = None
        try:
            for signum in MASTER_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            # until the worker's loop takes SIGUSR1 over, a forwarded one must not kill it
            signal.signal(signal.SIGUSR1, logs.reopen_on_signal)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
            os.close(self._wake_read)
            os.close(self._wake_write)
            os.close(self._serving_read)
            set_title(f"{self.label}: worker #{index}")
            worker_id = f"W{index}"
            logs.set_worker(worker_id)
            from .server import Server

            server = Server(self.kernel, worker_id=worker_id, multiprocess=self.workers > 1,
                            worker_index=index, master_pid=master_pid,
                            on_started=functools.partial(self._tell_serving, index))
            server.serve(self.listeners)
            status = 0
        except BaseException as error:
            if server is not None and server.started.is_set():
                import traceback

                traceback.print_exc()  # a crash while serving: the master starts another worker
                status = 1
            else:
                report(f"worker #{index} failed before serving: {describe(error)}", error)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _reap(self) -> list[tuple[int, int]]:
        """(index, exit status) of workers that exited since the last call; the previous master's workers are
        reaped quietly. Only our own pids are waited for: the reloader and the preflight check
        are `subprocess` children, whose exit status their Popen must get."""
        dead = []
        for pid in [*self.children, *self.retiring]:
            try:
                done, wait_status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, wait_status = pid, 0  # reaped already
            if not done:
                continue
            self.retiring.discard(pid)
            index = self.children.pop(pid, None)
            if index is not None:
                dead.append((index, os.waitstatus_to_exitcode(wait_status)))
        return dead

    def _reap_and_respawn(self) -> None:
        for index, status in self._reap():
            if self.stopping:
                continue
            if status == WORKER_BOOT_ERROR:
                # the worker wrote the one line that says why: the master only stops, with 1
                self.stopping, self.exit_status = True, FAILURE
                continue
            log.warning("worker #%d exited, starting a new one", index)
            self._spawn(index)

    def _replace_overloaded(self) -> None:
        for pid in self.cpu_watch.overloaded(list(self.children)):
            log.warning("worker #%d passed the CPU critical point, replacing it", self.children[pid])
            os.kill(pid, signal.SIGKILL)  # reaped and replaced by the loop

    def _stop_workers(self) -> int:
        self._stop_reloader()
        if self.preflight is not None:
            self.preflight.close()
        for pid in [*self.children, *self.retiring]:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.kernel.config.shutdown_timeout + 5
        while (self.children or self.retiring) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for pid in [*self.children, *self.retiring]:
            os.kill(pid, signal.SIGKILL)
        self._reap()
        self.processes.stop()
        if not self.exit_status:
            log.info("master stopped")
        return self.exit_status
