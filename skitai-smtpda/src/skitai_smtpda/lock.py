"""One agent per spool: the agent holds an exclusive `flock` on `<spool>/agent.lock`, with its
pid written in the file. The kernel releases the lock when the process ends however it ends
(SIGKILL included), so a lock is never stale, unlike a pid file."""
from __future__ import annotations

import fcntl
import os
import time

LOCK_FILE = "agent.lock"


class AgentLock:
    def __init__(self, spool_path: str) -> None:
        self.path = os.path.join(spool_path, LOCK_FILE)
        self.fd: int | None = None

    def acquire(self, wait: float = 2.0) -> bool:
        """Take the lock for this process, trying for `wait` seconds (someone may be probing
        it with `holder()` at this very moment); False when another agent holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        text = f"{os.getpid()}\n".encode()
        os.pwrite(fd, text, 0)  # written over the previous agent's pid, never an empty file
        os.ftruncate(fd, len(text))
        self.fd = fd  # kept open: closing it would release the lock
        return True

    def holder(self) -> int | None:
        """The pid of the agent that holds the lock, or None when no agent runs."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self._pid(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @staticmethod
    def _pid(fd: int) -> int:
        """The pid in a held lock's file; the very first agent of a spool may not have
        written it yet when the lock is seen held: it comes within moments."""
        deadline = time.monotonic() + 1.0
        while True:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            if text.isdigit() or time.monotonic() >= deadline:
                return int(text) if text.isdigit() else -1
            time.sleep(0.01)
