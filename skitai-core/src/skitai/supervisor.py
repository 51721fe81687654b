"""The master process: binds once, forks workers that share the listening socket, replaces a
worker that dies, and stops them all on SIGTERM or SIGINT.

One loop and one table of signals, like gunicorn's arbiter: signal handlers only record what
arrived (and wake the loop through a pipe); the loop does the work.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING

from .paths import process_label

if TYPE_CHECKING:
    from .kernel import Kernel

RESPAWN_CHECK = 0.2  # seconds between checks for dead workers: a death is answered well within 1 s


def set_title(title: str) -> None:
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle(title)


class WorkerSupervisor:
    def __init__(self, kernel: "Kernel", sock: socket.socket, workers: int) -> None:
        self.kernel = kernel
        self.sock = sock
        self.workers = workers
        self.label = process_label(kernel.config.name)
        self.children: dict[int, int] = {}  # pid -> worker index
        self.stopping = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)

    def run(self) -> int:
        set_title(f"{self.label}: master")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, self._wake)
        for index in range(self.workers):
            self._spawn(index)
        while not self.stopping:
            self._reap_and_respawn()
            select.select([self._wake_read], [], [], RESPAWN_CHECK)
            self._drain_wake_pipe()
        return self._stop_workers()

    # signals: record and wake, nothing else
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
        pid = os.fork()
        if pid:
            self.children[pid] = index
            return
        status = 1
        try:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            os.close(self._wake_read)
            os.close(self._wake_write)
            set_title(f"{self.label}: worker #{index}")
            from .server import Server

            Server(self.kernel, worker_id=f"W{index}").serve(self.sock)
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
