"""Where a URL path leads inside a static root: the checks that keep every answer inside it.

A decoded PATH_INFO is split into segments (`..` refused outright rather than normalised,
backslashes and NUL never name a file), joined to the root and resolved with `realpath`;
the result counts only when it, after symlinks, is the root or lies below it.
"""
from __future__ import annotations

import os
import stat
from typing import BinaryIO

INDEX_FILES = ("index.html",)


def url_parts(path_info: str) -> list[str] | None:
    """The path segments a decoded PATH_INFO names, or None when it can name no file.

    `path_info` is already percent-decoded, so `%2e%2e` and `%2f` arrive here as `..` and `/`;
    it holds the request's bytes as latin-1, which must be UTF-8 to name a file.
    """
    if "\x00" in path_info or "\\" in path_info or (path_info and path_info[0] != "/"):
        return None
    try:
        text = path_info.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        parts.append(part)
    return parts


def open_regular(path: str) -> tuple[BinaryIO, os.stat_result]:
    """Open `path` only if it is a regular file, judged on the open descriptor.

    O_NONBLOCK keeps a FIFO swapped in after the caller's checks from blocking the loop in
    open(); it has no effect on reading a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileNotFoundError(path)
    return os.fdopen(fd, "rb"), info


class StaticRootPath:
    """A static root's real path and the containment test every answer passes."""

    def __init__(self, root: str) -> None:
        self.path = os.path.realpath(root)
        self._prefix = self.path.rstrip(os.sep) + os.sep

    def inside(self, path: str) -> str | None:
        """The real path of `path` when it (after symlinks) is the root or below it."""
        real = os.path.realpath(path)
        return real if real == self.path or real.startswith(self._prefix) else None

    def locate(self, parts: list[str]) -> str | None:
        """The real path the segments name inside the root (it need not exist), or None."""
        return self.inside(os.path.join(self.path, *parts))

    def index(self, directory: str) -> str | None:
        """The index file of a directory; an index symlinked out of the root does not count."""
        for name in INDEX_FILES:
            index = self.inside(os.path.join(directory, name))
            if index is not None and os.path.isfile(index):
                return index
        return None
