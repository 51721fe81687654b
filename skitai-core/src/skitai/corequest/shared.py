"""State shared by the worker processes: last-update times (`was.setlu`/`was.getlu`), named
integers (`was.setgs`/`was.getgs`) and named locks (`was.get_lock`).

The names are registered before `skitai.run()` (`skitai.register_cache_keys`,
`skitai.register_states`) and the master allocates the table before it forks, so every worker
maps the same memory: 256 slots of 8 bytes, a float timestamp or a signed integer each.

Memory and locking are one unlinked temporary file: the workers `mmap` it (MAP_SHARED) and
serialize writers with `fcntl` record locks on it. Record locks, unlike a `multiprocessing.Lock`
semaphore, are released by the kernel when their process dies, so a worker killed inside a
critical section (SIGKILL from the CPU watch, the OOM killer) cannot wedge the others. Record
locks belong to a process, not a thread, so a `threading.Lock` serializes the threads of one
process first.
"""
from __future__ import annotations

import fcntl
import hashlib
import mmap
import struct
import tempfile
import threading
import time

MAX_SLOTS = 256
SLOT = 8
CACHE_KEY, STATE = "cache key", "state"
_INT64 = (-(2 ** 63), 2 ** 63 - 1)
# named locks lock one byte each, past the slots, at an offset derived from the name
_LOCK_BASE = MAX_SLOTS * SLOT
_LOCK_SPACE = 2 ** 48


def register(kind: str, registered: list[str], others: list[str], names: tuple[str, ...]) -> None:
    """Append `names` to `registered` (the list of one kind), checking them against both kinds:
    non-empty strings, one kind per name, at most `MAX_SLOTS` names together."""
    other_kind = STATE if kind == CACHE_KEY else CACHE_KEY
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {kind} name must be a non-empty str, not {name!r}")
        if name in others:
            raise ValueError(f"{name!r} is registered as a {other_kind} already")
        if name in registered:
            continue
        if len(registered) + len(others) >= MAX_SLOTS:
            raise ValueError(f"skitai: at most {MAX_SLOTS} cache keys and states together can be "
                             f"registered; {name!r} would be number {MAX_SLOTS + 1}")
        registered.append(name)


class SharedTable:
    """The shared slots of the registered names; create it in the master, before forking."""

    def __init__(self, cache_keys: list[str], states: list[str]) -> None:
        self.slots = {name: (CACHE_KEY, index) for index, name in enumerate(cache_keys)}
        self.slots.update((name, (STATE, index)) for index, name in enumerate(states, len(cache_keys)))
        self._file = tempfile.TemporaryFile(prefix="skitai-shared-")
        self._file.truncate(MAX_SLOTS * SLOT)
        self._fd = self._file.fileno()
        self._memory = mmap.mmap(self._fd, MAX_SLOTS * SLOT)
        self._thread_lock = threading.Lock()
        self._named_locks: dict[str, threading.Lock] = {}

    def close(self) -> None:
        self._memory.close()
        self._file.close()

    # slots
    def _slot(self, name: str, kind: str) -> int:
        known = self.slots.get(name)
        if known is None or known[0] != kind:
            register = "register_cache_keys" if kind == CACHE_KEY else "register_states"
            raise KeyError(f"{name!r} is not a registered {kind}: call skitai.{register}({name!r}) "
                           "before skitai.run()")
        return known[1] * SLOT

    def _read(self, fmt: str, offsets: list[int]) -> list:
        with self._thread_lock:
            fcntl.lockf(self._fd, fcntl.LOCK_SH, MAX_SLOTS * SLOT, 0)
            try:
                return [struct.unpack_from(fmt, self._memory, offset)[0] for offset in offsets]
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, MAX_SLOTS * SLOT, 0)

    def _write(self, fmt: str, offsets: list[int], value: float | int) -> None:
        with self._thread_lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX, MAX_SLOTS * SLOT, 0)
            try:
                for offset in offsets:
                    struct.pack_into(fmt, self._memory, offset, value)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN, MAX_SLOTS * SLOT, 0)

    # last updates of cache keys
    def setlu(self, *keys: str) -> float:
        """Mark the models named by `keys` as changed now; returns the timestamp."""
        offsets = [self._slot(key, CACHE_KEY) for key in keys]
        now = time.time()
        self._write("d", offsets, now)
        return now

    def getlu(self, *keys: str) -> float:
        """The latest change time of the models named by `keys` (0.0 if never changed)."""
        offsets = [self._slot(key, CACHE_KEY) for key in keys]
        return max(self._read("d", offsets), default=0.0)

    # integer states
    def setgs(self, name: str, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"state {name!r} takes an int, not {type(value).__name__}")
        if not _INT64[0] <= value <= _INT64[1]:
            raise OverflowError(f"state {name!r} holds a signed 64-bit integer; {value} does not fit")
        self._write("q", [self._slot(name, STATE)], value)

    def getgs(self, name: str) -> int:
        return self._read("q", [self._slot(name, STATE)])[0]

    def snapshot(self) -> dict[str, float | int]:
        """Every registered name with its value (for `was.status()`)."""
        values: dict[str, float | int] = {}
        for name, (kind, _) in self.slots.items():
            values[name] = self.getlu(name) if kind == CACHE_KEY else self.getgs(name)
        return values

    # named locks
    def lock(self, name: str) -> "SharedLock":
        with self._thread_lock:
            thread_lock = self._named_locks.setdefault(name, threading.Lock())
        return SharedLock(self._fd, name, thread_lock)


class SharedLock:
    """A lock by name for the threads and the worker processes of one server.

    `with was.get_lock("reindex"): ...`, or `acquire(blocking=True)` / `release()`. Each name
    locks its own byte of the shared file; a per-name `threading.Lock` orders the threads of
    one process, since record locks do not.
    """

    def __init__(self, fd: int, name: str, thread_lock: threading.Lock) -> None:
        self.name = name
        self._fd = fd
        digest = hashlib.sha1(name.encode("utf-8")).digest()
        self._offset = _LOCK_BASE + int.from_bytes(digest[:8], "big") % _LOCK_SPACE
        self._thread_lock = thread_lock

    def acquire(self, blocking: bool = True) -> bool:
        if not self._thread_lock.acquire(blocking):
            return False
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self._offset)
        except OSError:
            self._thread_lock.release()
            if blocking:
                raise
            return False
        return True

    def release(self) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, self._offset)
        self._thread_lock.release()

    def __enter__(self) -> "SharedLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

