"""The auto-reloader: a small child process of the master (`python -m skitai.reloader`) that
watches the apps' source files with watchfiles and sends the master SIGHUP when one changes,
so an edit goes through the very same graceful reload as `kill -HUP <master>`.

It is a process of its own because the master forks workers: watchfiles runs a native thread,
and forking a process with a thread that may hold a lock can leave the child with a lock no one
will release. The master stays single-threaded. It stops its reloader before re-executing
itself and starts a new one afterwards, with the list of files of the fresh import; a reloader
whose master is gone (killed with SIGKILL) exits within a second on its own.

Bursts of writes (editors save in several steps) are gathered into one reload: watchfiles
waits until no file changed for `QUIET_MS`; a SIGHUP that still arrives while the master checks
the new code restarts that check (see `supervisor`).
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from .paths import getswd, process_label
from .watchlist import WatchList, mounted_apps, watch_list

if TYPE_CHECKING:
    from .kernel import Kernel

DEBOUNCE_MS = 1600       # a burst of writes is gathered for at most this long
QUIET_MS = 100           # a burst ends when no watched file changed for this long
MASTER_CHECK_MS = 1000   # how often the reloader looks whether its master is still there
STOP_TIMEOUT = 5.0


def reloading_enabled(kernel: "Kernel") -> bool:
    """`--devel`, or a mounted app with a true `use_reloader` (set on the app or by a
    preference); never with `--silent`."""
    config = kernel.config
    if config.silent:
        return False
    return config.devel or any(getattr(app, "use_reloader", False) for app in mounted_apps(kernel))


def process_started_at() -> float:
    """When this process started, as wall-clock time. On Linux from /proc/self/stat, rounded up
    to the next clock tick: a file written in that first tick is read by the imports, which come
    later, and one written just before the start must not look like an edit. (psutil's
    `create_time` counts from a boot time rounded to the second, too coarse for that.)"""
    try:
        with open("/proc/self/stat") as stat:
            ticks = int(stat.read().rpartition(")")[2].split()[19])  # field 22, starttime
        since_boot = (ticks + 1) / os.sysconf("SC_CLK_TCK")
        return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + since_boot
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil

        return psutil.Process().create_time()


class Reloader:
    """The master's handle on its reloader process."""

    def __init__(self, watched: WatchList, label: str, since: float) -> None:
        self.watched = watched
        self.label = label
        self.since = since  # when the apps were imported: writes after it were not seen
        self.process: subprocess.Popen | None = None

    @classmethod
    def for_kernel(cls, kernel: "Kernel", reloaded_at: float | None) -> "Reloader | None":
        """The reloader for the mounted apps, or None when none asks for one. `reloaded_at`:
        when this master re-executed itself, if it did; else it imported the apps just after
        its process started."""
        if not reloading_enabled(kernel):
            return None
        since = process_started_at() if reloaded_at is None else reloaded_at
        return cls(watch_list(kernel), process_label(kernel.config.name), since)

    def start(self) -> None:
        # Run from the folder above the skitai package, not the script's: `-m` puts the working
        # directory first on sys.path, where a module of the project could shadow a library.
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen([sys.executable, "-m", "skitai.reloader"],
                                        stdin=subprocess.PIPE, cwd=package_parent)
        spec = {**self.watched.as_dict(), "label": self.label, "since": self.since, "master": os.getpid(),
                "base": getswd()}
        try:
            with self.process.stdin:
                self.process.stdin.write(json.dumps(spec).encode())
        except BrokenPipeError:
            pass  # it ended at once; the master reports its exit status

    def exit_status(self) -> int | None:
        """None while it runs, else how it ended."""
        return self.process.poll()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)


def watch(spec: dict) -> int:
    """The reloader process: SIGHUP to the master for every burst of changes, until the master
    stops it or is gone."""
    import watchfiles

    from .supervisor import set_title

    master, base = spec["master"], spec["base"]
    watched = WatchList.from_dict(spec)
    set_title(f"{spec['label']}: reloader")
    print(f"skitai: watching {len(watched.files)} files and {len(watched.packages)} packages for changes",
          file=sys.stderr, flush=True)
    first = True
    for changes in watchfiles.watch(*watched.folders(), watch_filter=watched.accepts, debounce=DEBOUNCE_MS,
                                    step=QUIET_MS, rust_timeout=MASTER_CHECK_MS, yield_on_timeout=True,
                                    recursive=False, raise_interrupt=False):
        if os.getppid() != master:
            return 0
        changed = sorted({path for _, path in changes})
        if first:
            # The watch is in place now; what was written before it began was not reported.
            first = False
            changed = changed or watched.written_since(spec["since"])
        if changed:
            forget_bytecode(changed)
            names = ", ".join(os.path.relpath(path, base) for path in changed)
            print(f"skitai: {names} changed, reloading", file=sys.stderr, flush=True)
            os.kill(master, signal.SIGHUP)
    return 0


def forget_bytecode(sources: list[str]) -> None:
    """Delete the cached bytecode of changed files. Python trusts a `.pyc` whose recorded source
    mtime (in whole seconds) and size match, so an edit that keeps the size within the second
    of the last compile (`v1` -> `v2`) would otherwise import the old code."""
    for source in sources:
        folder, name = os.path.split(source)
        stem = os.path.splitext(name)[0]
        for cached in glob.glob(os.path.join(glob.escape(folder), "__pycache__",
                                             f"{glob.escape(stem)}.{sys.implementation.cache_tag}*.pyc")):
            try:
                os.unlink(cached)
            except OSError:
                pass  # gone already, or not ours to delete: the import then compiles anew


def main() -> int:
    # Ctrl-C reaches the whole process group; the master decides when its reloader stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return watch(json.load(sys.stdin))


if __name__ == "__main__":
    sys.exit(main())
