"""A per-worker cache of what a static answer needs, modelled on nginx's `open_file_cache`.

An entry maps a PATH_INFO to its outcome: a file (real path, size, validators, content type
and, for small files, the bytes themselves), a directory and its index, or a 403/404. A hit
within `valid` seconds of the entry's last check costs one dict lookup and no system call.
After that the entry is checked against the disk again (path resolution and one `stat`), so an
edit shows after at most `valid` seconds; `valid=0` (`--devel`) checks at every request.

What the interval means: until an entry is checked again, its answers are those of the
version it saw, whole: the length, validators and bytes of a cached small file were read
together and are sent together, so a file changed, replaced or deleted meanwhile is answered
as it was (a consistent old version, never a mix) and then as it is. Files above the
small-file size are opened at every request and described by `fstat` of that descriptor, so
their length and validators are always those of the bytes sendfile sends; a descriptor that is
not the inode the entry resolved (a replaced file, or a directory swapped for a symlink) sends
the path through the whole resolution again, containment check included.

Bounded in entries (older entries go first; an entry moves to the young end whenever it is
revalidated, which approximates least-recently-used at no cost per hit) and in bytes of file
content held. Misses that needed no filesystem call (a malformed path, or a name that the
directory snapshots of `listing.py` know is not there) are not stored, so a scan for random
names cannot push the real files out.
"""
from __future__ import annotations

import mimetypes
import os
import stat
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

from ..httpdate import http_date
from .listing import DirectoryListings, is_racy
from .resolve import StaticRootPath, open_regular, url_parts

# A file guessed as "x.txt.gz" is gzip data, not text: sending the inner type without a
# Content-Encoding would mislabel it, so a compressed file is served as its container type.
COMPRESSED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
                    "compress": "application/x-compress"}
# Directory snapshots (see listing.py): names held all together (about 1 MB), directories.
MAX_LISTED_NAMES = 10_000
MAX_LISTED_DIRECTORIES = 256


def content_type(path: str) -> str:
    guessed, encoding = mimetypes.guess_type(path)
    if encoding is not None:
        return COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    return guessed or "application/octet-stream"


@dataclass(frozen=True)
class CacheSettings:
    valid: float = 1.0              # seconds an entry is trusted before the disk is asked again
    max_entries: int = 1000         # paths remembered (files, directories, misses)
    max_memory: int = 4 * 1024 * 1024   # bytes of file content held, all files together
    max_file_size: int = 64 * 1024  # files up to this size are held in memory; larger use sendfile


@dataclass(slots=True, eq=False)
class FileFacts:
    """What an answer with a file needs, as one `stat` of it showed."""

    path: str                # real path, inside the root
    identity: tuple          # (st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)
    size: int
    mtime: int               # whole seconds: HTTP dates have no finer resolution
    etag: str
    last_modified: str
    content_type: str
    body: bytes | None       # the content of a small file; None: sent from disk
    trusted: bool            # the mtime was old enough that any later change shows in it


def _identity(info: os.stat_result) -> tuple:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def describe(path: str, info: os.stat_result, body: bytes | None, kind: str | None = None) -> FileFacts:
    mtime = int(info.st_mtime)
    return FileFacts(path, _identity(info), info.st_size, mtime, f'"{info.st_mtime_ns:x}-{info.st_size:x}"',
                     http_date(mtime), kind or content_type(path), body, not is_racy(info.st_mtime))


@dataclass(slots=True, eq=False)
class Entry:
    code: int                        # 200 (a file, or a directory with its index), 403, 404
    file: FileFacts | None = None
    directory: bool = False          # the path named a directory; `file` is its index
    checked: float = float("inf")
    responses: dict = field(default_factory=dict)  # the handler's prepared answers (see handler.py)

    @property
    def memory(self) -> int:
        return len(self.file.body) if self.file is not None and self.file.body is not None else 0


NOT_FOUND = Entry(404)    # decided without the filesystem: never stored


class StaticCache:
    def __init__(self, root: str, settings: CacheSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = StaticRootPath(root)
        self.settings = settings
        self.valid = settings.valid
        self.clock = clock
        self.entries: dict[str, Entry] = {}
        self.memory = 0
        self.listings = DirectoryListings(settings.valid, MAX_LISTED_DIRECTORIES, MAX_LISTED_NAMES, clock)

    def lookup(self, path_info: str) -> Entry:
        entry = self.entries.get(path_info)
        if entry is not None and self.clock() - entry.checked < self.valid:
            return entry
        return self.refresh(path_info)

    def refresh(self, path_info: str) -> Entry:
        """The entry of `path_info` checked against the disk now; the facts (and bytes) of an
        unchanged file are kept."""
        old = self._drop(path_info)
        parts = url_parts(path_info)
        if parts is None:
            return NOT_FOUND
        # With valid=0 a snapshot would be read at every request: the path's own lookup is cheaper.
        if self.valid > 0 and not self.listings.may_exist(self.root.path, parts):
            return NOT_FOUND
        entry = self._resolve(path_info, parts, old.file if old is not None else None)
        entry.checked = self.clock()
        self._store(path_info, entry)
        return entry

    def reopen(self, path_info: str, entry: Entry) -> tuple[Entry, BinaryIO | None]:
        """The file of an entry served from disk, opened, with the entry as `fstat` of that very
        descriptor describes it; (entry, None) when the path now leads to something else (a
        404, a small file, ...) that the caller answers from the entry instead."""
        for _ in range(2):
            facts = entry.file
            try:
                file, info = open_regular(facts.path)
            except OSError:
                file = None
            if file is not None:
                if (info.st_dev, info.st_ino) == facts.identity[:2]:
                    if _identity(info) != facts.identity:   # rewritten in place: new validators
                        entry = Entry(200, describe(facts.path, info, None, facts.content_type),
                                      entry.directory, entry.checked)
                        self._drop(path_info)
                        self._store(path_info, entry)
                    return entry, file
                file.close()
            entry = self.refresh(path_info)
            if entry.code != 200 or entry.file.body is not None:
                return entry, None
        return NOT_FOUND, None   # replaced again and again while we looked: nothing stable to send

    # resolution
    def _resolve(self, path_info: str, parts: list[str], old: FileFacts | None) -> Entry:
        path = self.root.locate(parts)
        if path is None:
            return Entry(404)
        if os.path.isdir(path):
            index = self.root.index(path)
            return Entry(404) if index is None else self._file(index, old, directory=True)
        if path_info.endswith("/"):
            return Entry(404)   # "file.txt/" names a directory that does not exist
        return self._file(path, old)

    def _file(self, path: str, old: FileFacts | None, directory: bool = False) -> Entry:
        if old is not None and old.trusted and old.path == path:
            try:
                info = os.stat(path)
            except OSError:
                info = None
            if info is not None and stat.S_ISREG(info.st_mode) and _identity(info) == old.identity:
                return Entry(200, old, directory)
        try:
            file, info = open_regular(path)
        except PermissionError:
            return Entry(403)
        except OSError:
            return Entry(404)
        with file:
            return Entry(200, self._read(path, file, info), directory)

    def _read(self, path: str, file: BinaryIO, info: os.stat_result) -> FileFacts:
        """The facts of an open file and, when it is small, its bytes: read between two equal
        `fstat`s, so that the bytes are those the facts describe (a file being written while
        it is read is read again, and sent from disk if it never holds still)."""
        if info.st_size > self.settings.max_file_size:
            return describe(path, info, None)
        for _ in range(3):
            body = os.pread(file.fileno(), info.st_size + 1, 0)
            after = os.fstat(file.fileno())
            if len(body) == info.st_size and _identity(after) == _identity(info):
                return describe(path, info, body)
            info = after
        return describe(path, info, None)

    # bounds
    def _drop(self, path_info: str) -> Entry | None:
        entry = self.entries.pop(path_info, None)
        if entry is not None:
            self.memory -= entry.memory
        return entry

    def _store(self, path_info: str, entry: Entry) -> None:
        if self.valid <= 0:
            return   # nothing is reused anyway: --devel resolves every request
        settings = self.settings
        if entry.memory > settings.max_memory:
            entry.file.body = None
        while self.entries and (len(self.entries) >= settings.max_entries
                                or self.memory + entry.memory > settings.max_memory):
            self._drop(next(iter(self.entries)))
        self.entries[path_info] = entry
        self.memory += entry.memory
