"""`---profile`, `---gc` and `---memtrack`: what a serving process tells about its own speed and
memory. Each is off unless its option is given, and then costs nothing to the others.

The server drives them: `start()` once it serves, `tick()` from its once-a-second sweep,
`stop()` when it has stopped; `job_context` wraps each job of the WSGI thread pool.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Callable, ContextManager

from .paths import log_dir

if TYPE_CHECKING:
    import cProfile

    from .config import ServerConfig

log = logging.getLogger("skitai.server")

PROFILE_LINES = 200  # functions listed per report, by cumulative time

# ---gc schedule, in sweeps (one a second). Request garbage is young: a generation-0 pass each
# second finds it while it is small, so the pass stays short. Survivors of a few passes are
# scanned again every 10 s (CPython's own 10:1 ratio between generations). A full pass walks
# every live object, so it runs every 10 minutes: often enough that long-lived cycles do not
# pile up, rarely enough that its pause does not show in response times. Objects alive at
# startup (modules, apps, settings) are frozen and never walked at all.
GC_MIDDLE_EVERY = 10
GC_FULL_EVERY = 600

MEMTRACK_INTERVAL = 60.0  # seconds between ---memtrack lines (besides startup and stop)


class Profiler:
    """cProfile for the loop thread and the pool threads' jobs (a cProfile profile sees only the
    thread that enabled it, so each thread has its own), merged into one pstats report, sorted by
    cumulative time, when the process stops. cProfile and pstats are imported only when
    ---profile asks for this (a served process without it does not carry them)."""

    def __init__(self, log_path: str | None, worker_id: str) -> None:
        import cProfile
        import pstats

        self._new_profile = cProfile.Profile
        self._pstats = pstats
        self.log_path = log_path
        self.worker_id = worker_id
        self._local = threading.local()
        self._profiles: dict[cProfile.Profile, bool] = {}  # profile -> enabled right now
        self._lock = threading.Lock()
        self._loop_thread = contextlib.ExitStack()
        self._started = time.monotonic()

    @contextlib.contextmanager
    def running(self):
        """Profile the calling thread inside the block; the blocks of a thread add up."""
        profile = getattr(self._local, "profile", None)
        if profile is None:
            profile = self._local.profile = self._new_profile()
        try:
            profile.enable()
        except ValueError:  # Python 3.12+: one profiler per process, and it sees every thread
            yield
            return
        with self._lock:
            self._profiles[profile] = True
        try:
            yield
        finally:
            profile.disable()
            with self._lock:
                self._profiles[profile] = False

    def start(self) -> None:
        self._started = time.monotonic()
        self._loop_thread.enter_context(self.running())

    def tick(self, now: float) -> None:
        """Nothing to do each second."""

    def stop(self) -> None:
        self._loop_thread.close()
        with self._lock:  # a job still running past the pool's shutdown is left out
            done = [profile for profile, enabled in self._profiles.items() if not enabled]
            busy = len(self._profiles) - len(done)
        try:  # the folder is found only now: a worker that cannot write it still serves
            path = os.path.join(log_dir(self.log_path), f"profile.{self.worker_id}.log")
            self._write_report(path, done, busy)
        except OSError as error:
            log.error("cannot write the profile: %s", error)
            return
        log.info("profile written to %s", path)

    def _write_report(self, path: str, done: list[cProfile.Profile], busy: int) -> None:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"skitai profile of worker {self.worker_id} (pid {os.getpid()}), "
                      f"{time.monotonic() - self._started:.1f} s, {len(done)} threads"
                      f"{f' ({busy} still busy, left out)' if busy else ''}, "
                      f"stopped {time.strftime('%Y.%m.%d %H:%M:%S')}\n\n")
            if done:
                stats = self._pstats.Stats(*done, stream=out)
                stats.sort_stats(self._pstats.SortKey.CUMULATIVE).print_stats(PROFILE_LINES)
            out.write("\n")


class ManualGC:
    """Collection on the sweep's schedule instead of on allocation counts."""

    def __init__(self) -> None:
        self.ticks = 0

    def start(self) -> None:
        gc.disable()
        gc.collect()  # startup garbage, so it is not frozen for good
        gc.freeze()
        log.info("gc: automatic collection off, %d startup objects frozen", gc.get_freeze_count())

    def tick(self, now: float) -> None:
        self.ticks += 1
        if self.ticks % GC_FULL_EVERY == 0:
            generation = 2
        elif self.ticks % GC_MIDDLE_EVERY == 0:
            generation = 1
        else:
            generation = 0
        started = time.perf_counter()
        found = gc.collect(generation)
        log.debug("gc: generation %d collected %d objects in %.2f ms", generation, found,
                  (time.perf_counter() - started) * 1000)

    def stop(self) -> None:
        gc.unfreeze()
        gc.enable()


class MemoryTracker:
    """A memory status line at start, every `interval` seconds and at stop."""

    def __init__(self, interval: float = MEMTRACK_INTERVAL) -> None:
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.next_at = 0.0

    def status(self) -> str:
        rss = self._process.memory_info().rss
        return (f"rss {rss / 1048576:.1f} MiB, gc counts {gc.get_count()}, "
                f"tracked objects {len(gc.get_objects())}, frozen {gc.get_freeze_count()}")

    def start(self) -> None:
        self.next_at = time.monotonic() + self.interval
        log.info("memory at startup: %s", self.status())

    def tick(self, now: float) -> None:
        if now >= self.next_at:
            self.next_at = now + self.interval
            log.info("memory: %s", self.status())

    def stop(self) -> None:
        log.info("memory at stop: %s", self.status())


class Diagnostics:
    """The diagnostics the command line turned on, for one serving process."""

    def __init__(self, config: "ServerConfig", worker_id: str) -> None:
        self.profiler = Profiler(config.log_path, worker_id) if config.profile else None
        self.parts = [part for part in (ManualGC() if config.manual_gc else None,
                                        MemoryTracker() if config.memtrack else None,
                                        self.profiler) if part is not None]

    @property
    def job_context(self) -> Callable[[], ContextManager] | None:
        """What wraps each job of the WSGI pool (its profile), or None."""
        return self.profiler.running if self.profiler is not None else None

    def start(self) -> None:
        for part in self.parts:
            part.start()

    def tick(self) -> None:
        if self.parts:
            now = time.monotonic()
            for part in self.parts:
                part.tick(now)

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()
