"""Serving a directory mounted with `skitai.mount(point, "some/dir")`.

Runs on the loop thread: a stat and an open are cheap against the page cache, small files are
read in one go and sent in one write with their head, larger ones go out with sendfile.
"""
from __future__ import annotations

import mimetypes
import os
import stat
import time
from typing import BinaryIO, Sequence

from ..exchange import Exchange, FileSegment, RequestHandler
from ..httpdate import http_date
from ..ranges import UNSATISFIABLE, if_range_allows, parse_range, range_response
from ..statuses import error_body, error_headers, status_line
from .conditional import evaluate_preconditions

SMALL_FILE = 64 * 1024
INDEX_FILES = ("index.html",)
ALLOWED = "GET, HEAD"
# Request headers the handler reads; repeated ones are joined as one list (RFC 9110 5.3).
CONDITIONAL_HEADERS = frozenset(
    ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range"))
# A file guessed as "x.txt.gz" is gzip data, not text: sending the inner type without a
# Content-Encoding would mislabel it, so a compressed file is served as its container type.
COMPRESSED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
                    "compress": "application/x-compress"}


class StaticRoot(str):
    """An absolute directory path meant as a static mount (as opposed to an app file path)."""


def content_type(path: str) -> str:
    guessed, encoding = mimetypes.guess_type(path)
    if encoding is not None:
        return COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    return guessed or "application/octet-stream"


def request_headers(exchange: Exchange) -> dict[str, str]:
    """The conditional and range headers by lower-case name; a repeated header becomes the
    comma-joined list, which makes a repeated date or Range invalid and hence ignored."""
    found: dict[str, str] = {}
    for name, value in exchange.headers:
        if name in CONDITIONAL_HEADERS:
            found[name] = f"{found[name]}, {value}" if name in found else value
    return found


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


class StaticDirectory(RequestHandler):
    def __init__(self, point: str, root: str) -> None:
        self.point = point
        self.root = os.path.realpath(root)
        self._root_prefix = self.root.rstrip(os.sep) + os.sep
        self.config = None

    def bind(self, server) -> None:
        self.config = server.config

    def __repr__(self) -> str:
        return f"<StaticDirectory {self.point} -> {self.root}>"

    # path resolution
    def filesystem_path(self, path_info: str) -> str | None:
        """The real path a decoded PATH_INFO names inside the root, or None when it is outside
        or malformed. The path need not exist.

        `path_info` is already percent-decoded, so `%2e%2e` and `%2f` arrive here as `..` and
        `/`. Backslashes and NUL never name a file here; `..` is refused outright rather than
        normalised; symlinks are followed and must stay inside the root.
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
        return self._inside(os.path.join(self.root, *parts))

    def _inside(self, path: str) -> str | None:
        """The real path of `path` when it (after symlinks) is the root or below it."""
        real = os.path.realpath(path)
        return real if real == self.root or real.startswith(self._root_prefix) else None

    def _index(self, directory: str) -> str | None:
        """The index file of a directory; an index symlinked out of the root does not count."""
        for name in INDEX_FILES:
            index = self._inside(os.path.join(directory, name))
            if index is not None and os.path.isfile(index):
                return index
        return None

    def has_file(self, exchange: Exchange) -> bool:
        """Whether this directory answers the request (used when an app shares the point)."""
        path = self.filesystem_path(exchange.path_info)
        if path is None:
            return False
        if os.path.isdir(path):
            return self._index(path) is not None
        return os.path.isfile(path) and not exchange.path_info.endswith("/")

    # serving
    def handle(self, exchange: Exchange) -> None:
        if exchange.method not in ("GET", "HEAD"):
            self._error(exchange, 405, [("Allow", ALLOWED)])
            return
        path = self.filesystem_path(exchange.path_info)
        if path is not None and os.path.isdir(path):
            index = self._index(path)
            if index is not None and not exchange.path.endswith("/"):
                self._redirect_to_slash(exchange)
                return
            path = index
        elif exchange.path_info.endswith("/"):
            path = None  # "file.txt/" names a directory that does not exist
        if path is None:
            self._error(exchange, 404)
            return
        try:
            file, info = open_regular(path)
        except PermissionError:
            self._error(exchange, 403)
            return
        except OSError:
            self._error(exchange, 404)
            return
        try:
            self._send(exchange, path, file, info)
        except BaseException:
            file.close()
            raise

    def _error(self, exchange: Exchange, code: int, extra: Sequence[tuple[str, str]] = ()) -> None:
        exchange.send_response(status_line(code), error_headers() + list(extra), error_body(code))

    def _redirect_to_slash(self, exchange: Exchange) -> None:
        """301 to the directory's slash form, so relative links in its index resolve inside it.

        Leading slashes are collapsed: `//example.com` would otherwise redirect off-site.
        """
        location = "/" + exchange.path.lstrip("/") + "/"
        if exchange.query:
            location += "?" + exchange.query
        self._error(exchange, 301, [("Location", location)])

    def _cache_headers(self, exchange: Exchange) -> list[tuple[str, str]]:
        max_age = self.config.max_age_for(exchange.script_name + exchange.path_info) if self.config else None
        if max_age is None:
            return []
        return [("Cache-Control", f"max-age={max_age}"), ("Expires", http_date(time.time() + max_age))]

    def _send(self, exchange: Exchange, path: str, file: BinaryIO, info: os.stat_result) -> None:
        size = info.st_size
        mtime = int(info.st_mtime)
        etag = f'"{info.st_mtime_ns:x}-{size:x}"'
        last_modified = http_date(mtime)
        validators = [("Last-Modified", last_modified), ("ETag", etag)] + self._cache_headers(exchange)
        request = request_headers(exchange)
        decided = evaluate_preconditions(exchange.method, request, etag, mtime)
        if decided is not None:
            file.close()
            if decided == 304:
                exchange.send_response(status_line(304), validators)  # RFC 9110 15.4.5
            else:
                self._error(exchange, 412)
            return
        kind = content_type(path)
        headers = [("Content-Type", kind), *validators, ("Accept-Ranges", "bytes")]
        ranges = None
        if exchange.method == "GET" and if_range_allows(request.get("if-range"), etag, last_modified):
            ranges = parse_range(request.get("range"), size)
        if ranges == UNSATISFIABLE:
            file.close()
            self._error(exchange, 416, [("Content-Range", f"bytes */{size}")])
        elif ranges:
            self._send_ranges(exchange, headers, ranges, size, kind, file)
        else:
            self._send_whole(exchange, headers, size, file)

    def _send_whole(self, exchange: Exchange, headers: list[tuple[str, str]], size: int,
                    file: BinaryIO) -> None:
        headers.append(("Content-Length", str(size)))
        if exchange.method == "HEAD" or size <= SMALL_FILE:
            body = b"" if exchange.method == "HEAD" else file.read()
            file.close()
            exchange.send_response(status_line(200), headers, body)
            return
        exchange.add_done_callback(lambda _: file.close())
        exchange.send_response(status_line(200), headers, [FileSegment(file, 0, size)])

    def _send_ranges(self, exchange: Exchange, headers: list[tuple[str, str]], ranges: list[tuple[int, int]],
                     size: int, kind: str, file: BinaryIO) -> None:
        status, extra, pieces = range_response(ranges, size, kind, file)
        if len(ranges) > 1:
            headers = [header for header in headers if header[0] != "Content-Type"]
        exchange.add_done_callback(lambda _: file.close())
        exchange.send_response(status, headers + extra, pieces)
