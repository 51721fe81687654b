"""Snapshots of directory listings, so that a path naming nothing is known to name nothing
without asking the filesystem.

This is what keeps an app that shares its mount point with a static directory free of
filesystem calls: `/api/users/42` is the app's as soon as `api` is not among the names of the
static root, read from a snapshot taken at most once per validity interval. A snapshot is
revalidated with one `stat` of its directory (a directory's mtime changes whenever a name is
added, removed or renamed in it) and re-read when that changed. Timestamps are coarser than the
work between two calls, so a snapshot taken while the directory's mtime was recent cannot tell a
later change in the same tick: it is re-read at every validation instead of trusted (git's
"racily clean" rule). The names held are bounded all together; a directory with more names
than that is not held, and paths below it go to the filesystem as before.

Names are compared case-folded and NFC-normalised, so that on a case-insensitive or normalising
filesystem (macOS, Windows) a name that the filesystem would find is never taken for missing;
the lookup that follows decides.
"""
from __future__ import annotations

import os
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable

# A timestamp this close to the clock may be followed by a change that leaves it unchanged.
RACY_SECONDS = 2.0


def is_racy(mtime: float) -> bool:
    return time.time() - mtime < RACY_SECONDS


def fold(name: str) -> str:
    """A name as every filesystem would match it, or more loosely."""
    return name.casefold() if name.isascii() else unicodedata.normalize("NFC", name).casefold()


@dataclass(slots=True, eq=False)
class Snapshot:
    names: frozenset[str] | None   # None: not known (too many names, or unreadable)
    identity: tuple | None         # (st_dev, st_ino, st_mtime_ns) of the directory; None: missing
    trusted: bool                  # the mtime was old enough to show any later change
    checked: float


class DirectoryListings:
    def __init__(self, valid: float, max_directories: int, max_names: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.valid = valid
        self.max_directories = max_directories
        self.max_names = max_names      # all snapshots together
        self.clock = clock
        self.snapshots: dict[str, Snapshot] = {}
        self.names_held = 0

    def may_exist(self, root: str, parts: list[str]) -> bool:
        """False when some segment is known to be missing from its parent directory."""
        directory = root
        for part in parts:
            names = self.names(directory)
            if names is not None and fold(part) not in names:
                return False
            directory = os.path.join(directory, part)
        return True

    def names(self, directory: str) -> frozenset[str] | None:
        snapshot = self.snapshots.get(directory)
        now = self.clock()
        if snapshot is not None and now - snapshot.checked < self.valid:
            return snapshot.names
        identity = _identity(directory)
        if snapshot is not None and snapshot.trusted and identity == snapshot.identity:
            snapshot.checked = now
            del self.snapshots[directory]         # to the young end of the eviction order
            self.snapshots[directory] = snapshot
            return snapshot.names
        snapshot = self._read(directory, identity, now)
        self._drop(directory)
        if self.valid > 0:
            size = _size(snapshot)
            while self.snapshots and (len(self.snapshots) >= self.max_directories
                                      or self.names_held + size > self.max_names):
                self._drop(next(iter(self.snapshots)))
            self.snapshots[directory] = snapshot
            self.names_held += size
        return snapshot.names

    def _drop(self, directory: str) -> None:
        snapshot = self.snapshots.pop(directory, None)
        if snapshot is not None:
            self.names_held -= _size(snapshot)

    def _read(self, directory: str, identity: tuple | None, now: float) -> Snapshot:
        names: set[str] | None = set()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    names.add(fold(entry.name))
                    if len(names) > self.max_names:
                        names = None
                        break
        except (FileNotFoundError, NotADirectoryError):
            names = set()   # nothing lies below a missing path or a file
        except OSError:
            names = None
        after = _identity(directory)
        # Read between two equal looks at the directory, from an mtime old enough to trust.
        trusted = after is not None and after == identity and not is_racy(after[2] / 1e9)
        return Snapshot(None if names is None else frozenset(names), after, trusted, now)


def _size(snapshot: Snapshot) -> int:
    return len(snapshot.names) if snapshot.names is not None else 0


def _identity(directory: str) -> tuple | None:
    try:
        info = os.stat(directory)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_mtime_ns)
