"""Serving a directory mounted with `skitai.mount(point, "some/dir")`.

Runs on the loop thread: a stat and an open are cheap against the page cache, small files are
read in one go and sent in one write with their head, larger ones go out with sendfile.
"""
from __future__ import annotations

import mimetypes
import os
import stat
import time

from ..exchange import Exchange, FileSegment, RequestHandler
from ..httpdate import http_date
from ..ranges import UNSATISFIABLE, if_range_allows, parse_range, range_response
from ..statuses import error_body, error_headers, status_line
from .conditional import evaluate_preconditions

SMALL_FILE = 64 * 1024
INDEX_FILES = ("index.html",)


class StaticRoot(str):
    """An absolute directory path meant as a static mount (as opposed to an app file path)."""


class StaticDirectory(RequestHandler):
    def __init__(self, point: str, root: str) -> None:
        self.point = point
        self.root = os.path.realpath(root)
        self.config = None

    def bind(self, server) -> None:
        self.config = server.config

    def __repr__(self) -> str:
        return f"<StaticDirectory {self.point} -> {self.root}>"

    # path resolution
    def filesystem_path(self, path_info: str) -> str | None:
        """The file a decoded PATH_INFO names inside the root, or None when it is outside,
        malformed, or not a regular file or directory.

        `path_info` is already percent-decoded, so `%2e%2e` and `%2f` arrive here as `..` and
        `/`. Backslashes and NUL never name a file here; `..` is refused outright rather than
        normalised; symlinks are followed and must stay inside the root.
        """
        if "\x00" in path_info or "\\" in path_info:
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
        candidate = os.path.join(self.root, *parts)
        real = os.path.realpath(candidate)
        if real != self.root and not real.startswith(self.root + os.sep):
            return None
        return real

    def has_file(self, exchange: Exchange) -> bool:
        """Whether this directory answers the request (used when an app shares the point)."""
        path = self.filesystem_path(exchange.path_info)
        if path is None:
            return False
        if os.path.isfile(path):
            return True
        return os.path.isdir(path) and any(
            os.path.isfile(os.path.join(path, name)) for name in INDEX_FILES)

    # serving
    def handle(self, exchange: Exchange) -> None:
        if exchange.method not in ("GET", "HEAD"):
            exchange.send_response(status_line(405), error_headers() + [("Allow", "GET, HEAD")],
                                   error_body(405))
            return
        path = self.filesystem_path(exchange.path_info)
        if path is None:
            self._error(exchange, 404)
            return
        try:
            info = os.stat(path)
            if stat.S_ISDIR(info.st_mode):
                if not exchange.path.endswith("/"):
                    location = exchange.path + "/" + ("?" + exchange.query if exchange.query else "")
                    exchange.send_response(status_line(301), error_headers() + [("Location", location)],
                                           error_body(301))
                    return
                for name in INDEX_FILES:
                    index = os.path.join(path, name)
                    if os.path.isfile(index):
                        path, info = index, os.stat(index)
                        break
                else:
                    self._error(exchange, 404)
                    return
            if not stat.S_ISREG(info.st_mode):
                self._error(exchange, 404)
                return
            file = open(path, "rb")
        except PermissionError:
            self._error(exchange, 403)
            return
        except OSError:
            self._error(exchange, 404)
            return
        try:
            self._send(exchange, path, file, os.fstat(file.fileno()))
        except BaseException:
            file.close()
            raise

    def _error(self, exchange: Exchange, code: int) -> None:
        exchange.send_response(status_line(code), error_headers(), error_body(code))

    def _send(self, exchange: Exchange, path: str, file, info: os.stat_result) -> None:
        size = info.st_size
        mtime = int(info.st_mtime)
        etag = f'"{info.st_mtime_ns:x}-{size:x}"'
        last_modified = http_date(mtime)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers = [("Content-Type", content_type), ("Last-Modified", last_modified),
                   ("ETag", etag), ("Accept-Ranges", "bytes")]
        max_age = self.config.max_age_for(exchange.script_name + exchange.path_info) if self.config else None
        if max_age is not None:
            headers.append(("Cache-Control", f"max-age={max_age}"))
            headers.append(("Expires", http_date(time.time() + max_age)))
        request_headers = dict(exchange.headers)
        decided = evaluate_preconditions(exchange.method, request_headers, etag, mtime)
        if decided is not None:
            file.close()
            if decided == 304:
                exchange.send_response(status_line(304), headers[1:])
            else:
                exchange.send_response(status_line(412), error_headers(), error_body(412))
            return
        status = status_line(200)
        ranges = None
        if exchange.method == "GET" and if_range_allows(request_headers.get("if-range"), etag, last_modified):
            ranges = parse_range(request_headers.get("range"), size)
        if ranges == UNSATISFIABLE:
            file.close()
            exchange.send_response(status_line(416), error_headers() + [("Content-Range", f"bytes */{size}")],
                                   error_body(416))
            return
        if ranges:
            status, extra, pieces = range_response(ranges, size, content_type, file)
            if len(ranges) > 1:
                headers = [h for h in headers if h[0] != "Content-Type"]
            headers += extra
        elif exchange.method == "HEAD" or size <= SMALL_FILE:
            body = b"" if exchange.method == "HEAD" else file.read()
            file.close()
            headers.append(("Content-Length", str(size)))
            exchange.send_response(status, headers, body)
            return
        else:
            pieces = [FileSegment(file, 0, size)]
        exchange.add_done_callback(lambda _: file.close())
        exchange.send_response(status, headers, pieces)
