"""The master process: binds once, forks workers that share the listening sockets, replaces a
worker that dies, and stops them all on SIGTERM or SIGINT.

One loop and one table of signals, like gunicorn's arbiter: signal handlers only record what
arrived (and wake the loop through a pipe); the loop does the work.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time
from typing import TYPE_CHECKING

from .listeners import inheritable
from .paths import process_label
from .tls import unreadable_files

if TYPE_CHECKING:
    from .kernel import Kernel
    from .listeners import Listener

RESPAWN_CHECK = 0.2  # seconds between checks for dead workers: a death is answered well within 1 s
RETIRE_DELAY = 0.5   # after a reload, how long old workers keep accepting beside the new ones
LISTEN_FD_ENV = "SKITAI_LISTEN_FD"      # the sockets a reloaded master inherits
RETIRING_ENV = "SKITAI_RETIRING_PIDS"   # the workers it asks to drain and stop
MASTER_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


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
        self.stopping = False
        self.reloading = False
        config = kernel.config
        self.cpu_watch = (CpuWatch(config.critical_cpu_percent, config.critical_continuous,
                                   config.critical_interval) if config.critical_interval > 0 else None)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def run(self) -> int:
        set_title(f"{self.label}: master")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        signal.signal(signal.SIGCHLD, self._wake)
        for index in range(self.workers):
            self._spawn(index)
        self._retire_previous_workers()
        while not self.stopping:
            if self.reloading:
                self._reload()
            self._reap_and_respawn()
            if self.cpu_watch is not None and time.monotonic() >= self.cpu_watch.next_check:
                self._replace_overloaded()
            select.select([self._wake_read], [], [], RESPAWN_CHECK)
            self._drain_wake_pipe()
        return self._stop_workers()

    # graceful reload
    def _reload(self) -> None:
        """SIGHUP: run the script again in this process (same pid, so the workers stay our
        children) with the listening sockets inherited. The new master imports the apps afresh,
        starts new workers, then asks these ones to drain and stop; the sockets never close, so
        no connection is refused meanwhile."""
        unreadable = unreadable_files(self.kernel.config)
        if unreadable:
            # The new master would fail to start and leave these workers without a master.
            self.reloading = False
            print(f"skitai: not reloading: cannot read {', '.join(unreadable)} without root privileges; "
                  "restart the server instead", file=sys.stderr, flush=True)
            return
        main = sys.modules["__main__"]
        os.environ[LISTEN_FD_ENV] = inheritable(self.listeners)
        os.environ[RETIRING_ENV] = ",".join(str(pid) for pid in self.children)
        print("skitai: reloading", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, os.path.realpath(main.__file__), *sys.argv[1:]])

    def _retire_previous_workers(self) -> None:
        pids = os.environ.pop(RETIRING_ENV, "")
        if not pids:
            return
        time.sleep(RETIRE_DELAY)  # let the new workers start accepting first
        for pid in pids.split(","):
            try:
                os.kill(int(pid), signal.SIGTERM)
            except ProcessLookupError:
                pass

    # signals: record and wake, nothing else
    def _on_reload_signal(self, signum, frame) -> None:
        self.reloading = True
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
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
            self.children[pid] = index
            return
        status = 1
        try:
            for signum in MASTER_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
            os.close(self._wake_read)
            os.close(self._wake_write)
            set_title(f"{self.label}: worker #{index}")
            from .server import Server

            Server(self.kernel, worker_id=f"W{index}").serve(self.listeners)
            status = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _reap(self) -> list[int]:
        """Indexes of workers that exited since the last call."""
        dead = []
        while self.children:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            index = self.children.pop(pid, None)
            if index is not None:
                dead.append(index)
        return dead

    def _reap_and_respawn(self) -> None:
        for index in self._reap():
            if not self.stopping:
                print(f"skitai: worker #{index} exited, starting a new one", file=sys.stderr, flush=True)
                self._spawn(index)

    def _replace_overloaded(self) -> None:
        for pid in self.cpu_watch.overloaded(list(self.children)):
            print(f"skitai: worker #{self.children[pid]} passed the CPU critical point, replacing it",
                  file=sys.stderr, flush=True)
            os.kill(pid, signal.SIGKILL)  # reaped and replaced by the loop

    def _stop_workers(self) -> int:
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.kernel.config.shutdown_timeout + 5
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for pid in list(self.children):
            os.kill(pid, signal.SIGKILL)
        self._reap()
        print("skitai: master stopped", file=sys.stderr, flush=True)
        return 0
