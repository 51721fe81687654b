"""Where cachefs keeps its entries: a memory tier per worker process and a disk tier that the
worker processes share, each bounded in bytes.

`MemoryTier` is a least-recently-used dict, used on the worker's event loop thread only.
`DiskTier` is a directory, one file per key, read and written by every worker at once without
coordination but for a lock around its size accounting:

* a file is written whole to `tmp/`, fsynced, then renamed over its name: a reader sees the old
  file or the new one, never a half-written one;
* each file starts with a header (magic, payload length, SHA-256 of the payload): a file that
  is truncated, corrupt, or of another format is deleted and answered as a miss, never served;
* the bytes in use are counted in `usage` under an exclusive `flock` on `lock`; a write that
  takes it past `diskmax` evicts the least recently used files (oldest mtime: a hit touches
  its file) down to 90% of it, recounting from the directory itself, which also repairs the
  count after a crash, and deletes the temporary files of writers killed mid-write.

The methods of `DiskTier` block on the file system: call them off the event loop.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import struct
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator

from .cachepolicy import Entry, Response

MAGIC = b"SKCFS\x00\x01\n"
_HEADER = struct.Struct(">8sQ32s")  # magic, payload length, sha256(payload)
_META_LENGTH = struct.Struct(">I")
EVICT_TO = 0.9  # an eviction leaves this fraction of diskmax in use
ABANDONED_AFTER = 3600.0  # a temporary file this old (seconds) lost its writer


class MemoryTier:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.size = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Entry) -> None:
        self.remove(key)
        if entry.size() > self.maxsize:
            return
        self._entries[key] = entry
        self.size += entry.size()
        while self.size > self.maxsize:
            _, evicted = self._entries.popitem(last=False)
            self.size -= evicted.size()

    def remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= entry.size()


class DiskTier:
    def __init__(self, path: str, maxsize: int) -> None:
        self.path = path
        self.maxsize = maxsize
        self._tmp = os.path.join(path, "tmp")
        os.makedirs(self._tmp, exist_ok=True)

    def file_for(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(self.path, digest[:2], digest)

    def get(self, key: str) -> Entry | None:
        """The entry stored for `key`; a damaged file is deleted and answers None."""
        filename = self.file_for(key)
        try:
            with open(filename, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        entry = decode(data, key)
        if entry is None:
            self._delete(filename, recount=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(filename)  # recently used: evicted last
        return entry

    def put(self, key: str, entry: Entry) -> None:
        data = encode(key, entry)
        if len(data) > self.maxsize:
            return
        filename = self.file_for(key)
        os.makedirs(os.path.dirname(filename), exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            with self._locked():
                replaced = _size_of(filename)
                os.replace(temporary, filename)
                usage = self._usage() + len(data) - replaced
                if usage > self.maxsize:
                    usage = self._evict()
                self._set_usage(usage)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def remove(self, key: str) -> None:
        self._delete(self.file_for(key))

    def _delete(self, filename: str, recount: bool = False) -> None:
        """Delete an entry's file; `recount` the bytes in use from the directory when the file
        is damaged (its size now is not the one counted)."""
        with self._locked():
            size = _size_of(filename)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(filename)
            if recount:
                self._set_usage(sum(size for _, size, _ in self._files()))
            else:
                self._set_usage(max(0, self._usage() - size))

    # size accounting, always under the lock
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(os.path.join(self.path, "lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _usage(self) -> int:
        try:
            with open(os.path.join(self.path, "usage"), "rb") as file:
                return int(file.read())
        except (FileNotFoundError, ValueError):  # never counted, or a torn count: count again
            return sum(size for _, size, _ in self._files())

    def _set_usage(self, usage: int) -> None:
        with open(os.path.join(self.path, "usage"), "wb") as file:
            file.write(str(usage).encode())

    def _files(self) -> list[tuple[str, int, float]]:
        """(path, size, mtime) of every entry file."""
        files = []
        for bucket in os.scandir(self.path):
            if not bucket.is_dir() or bucket.name == "tmp":
                continue
            for item in os.scandir(bucket.path):
                with contextlib.suppress(FileNotFoundError):
                    stat = item.stat()
                    files.append((item.path, stat.st_size, stat.st_mtime))
        return files

    def _evict(self) -> int:
        """Delete the least recently used files down to EVICT_TO of maxsize; the bytes left."""
        for item in os.scandir(self._tmp):
            with contextlib.suppress(FileNotFoundError):
                if item.stat().st_mtime < time.time() - ABANDONED_AFTER:
                    os.unlink(item.path)
        files = sorted(self._files(), key=lambda item: item[2])
        usage = sum(size for _, size, _ in files)
        for filename, size, _ in files:
            if usage <= self.maxsize * EVICT_TO:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(filename)
            usage -= size
        return usage


def encode(key: str, entry: Entry) -> bytes:
    response = entry.response
    meta = json.dumps({"key": key, "status": response.status, "reason": response.reason,
                       "headers": response.headers, "request_time": entry.request_time,
                       "response_time": entry.response_time, "vary": entry.vary}).encode()
    payload = _META_LENGTH.pack(len(meta)) + meta + response.body
    return _HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def decode(data: bytes, key: str) -> Entry | None:
    """The entry in a file's bytes, or None when they are not a whole, intact file for `key`."""
    if len(data) < _HEADER.size:
        return None
    magic, length, digest = _HEADER.unpack_from(data)
    payload = data[_HEADER.size:]
    if magic != MAGIC or length != len(payload) or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        (meta_length,) = _META_LENGTH.unpack_from(payload)
        meta = json.loads(payload[_META_LENGTH.size:_META_LENGTH.size + meta_length])
        if meta["key"] != key:  # two keys whose names hash alike: not ours
            return None
        response = Response(meta["status"], meta["reason"], tuple(map(tuple, meta["headers"])),
                            payload[_META_LENGTH.size + meta_length:])
        return Entry(response, meta["request_time"], meta["response_time"],
                     tuple((name, value) for name, value in meta["vary"]))
    except (struct.error, ValueError, KeyError, TypeError):
        return None


def _size_of(filename: str) -> int:
    try:
        return os.stat(filename).st_size
    except FileNotFoundError:
        return 0
