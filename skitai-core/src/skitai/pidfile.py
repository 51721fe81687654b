"""The daemon's pid file, and how to tell whether the process it names is really our server.

A pid alone is not proof: after a crash the number may have been given to another process, and
signalling that one would be a disaster. So the owner must be alive (not a zombie), must have
been created before the file was written, and must look like this script's server (its process
title, or the script on its command line). Anything else makes the file stale.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

# psutil's create time is derived from clock ticks since boot: allow for its rounding
CLOCK_SLACK = 1.0


class AlreadyRunning(Exception):
    def __init__(self, pid: int) -> None:
        super().__init__(f"already running (pid {pid})")
        self.pid = pid


def is_alive(process: psutil.Process) -> bool:
    """Running and not a zombie (an exited daemon nobody has reaped yet counts as gone)."""
    import psutil
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class PidFile:
    def __init__(self, path: str, label: str, script: str) -> None:
        self.path = path
        self.label = label    # the process title prefix, e.g. 'skitai/myservice'
        self.script = script  # the real path of the script

    def read(self) -> int | None:
        try:
            with open(self.path, encoding="ascii") as file:
                return int(file.read().split()[0])
        except (FileNotFoundError, IndexError, ValueError, UnicodeDecodeError):
            return None

    def owner(self) -> psutil.Process | None:
        """The live server this file names, or None when there is none (no file or stale).
        psutil is imported only when there is a file to check: a server run without one (in
        the foreground, every start of a fresh daemon) does not carry it in its memory."""
        pid = self.read()
        if pid is None:
            return None
        import psutil
        try:
            written = os.stat(self.path).st_mtime
            process = psutil.Process(pid)
            if not is_alive(process) or process.create_time() > written + CLOCK_SLACK:
                return None
            cmdline = process.cmdline()
        except (OSError, psutil.Error):
            return None
        return process if self._is_ours(cmdline) else None

    def _is_ours(self, cmdline: list[str]) -> bool:
        if self.label in " ".join(cmdline):  # the title the daemon sets before writing the file
            return True
        name = os.path.basename(self.script)
        return any(os.path.basename(arg) == name for arg in cmdline[1:])

    def create(self, pid: int) -> None:
        """Write `pid` atomically: readers see the whole number or no file. A file of a live
        server raises AlreadyRunning; a stale one is replaced."""
        temporary = f"{self.path}.{pid}.tmp"
        with open(temporary, "w", encoding="ascii") as file:
            file.write(f"{pid}\n")
        try:
            try:
                os.link(temporary, self.path)  # fails when the file exists: no race between two starts
                return
            except FileExistsError:
                owner = self.owner()
                if owner is not None and owner.pid != pid:
                    raise AlreadyRunning(owner.pid) from None
            os.replace(temporary, self.path)
        finally:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass

    def remove(self, pid: int) -> None:
        """Delete the file if it still names `pid` (never another server's file)."""
        if self.read() == pid:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
