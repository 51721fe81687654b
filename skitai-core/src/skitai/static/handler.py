"""Serving a directory mounted with `skitai.mount(point, "some/dir")`.

Runs on the loop thread. What an answer needs comes from the per-worker `StaticCache`: a
request for a cached small file without conditional or range headers is answered with a
`PreparedResponse` (headers built once, and encoded once per second by the protocol), so it
costs a dict lookup and one write. Everything else (conditionals, ranges, files sent with
sendfile) takes the general path, from the same cached facts.
"""
from __future__ import annotations

import time
from typing import BinaryIO, Sequence

from ..exchange import Exchange, FileSegment, PreparedResponse, RequestHandler
from ..httpdate import http_date, http_date_now
from ..ranges import UNSATISFIABLE, if_range_allows, parse_range, range_response
from ..statuses import error_body, error_headers, status_line
from .cache import CacheSettings, Entry, FileFacts, StaticCache
from .conditional import evaluate_preconditions

ALLOWED = "GET, HEAD"
READS = ("GET", "HEAD")
# Request headers the handler reads; repeated ones are joined as one list (RFC 9110 5.3).
CONDITIONAL_HEADERS = frozenset(
    ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range"))
OK, NOT_MODIFIED = status_line(200), status_line(304)
_NO_MAX_AGE = object()


class StaticRoot(str):
    """An absolute directory path meant as a static mount (as opposed to an app file path)."""


def request_headers(exchange: Exchange) -> dict[str, str]:
    """The conditional and range headers by lower-case name; a repeated header becomes the
    comma-joined list, which makes a repeated date or Range invalid and hence ignored."""
    found: dict[str, str] = {}
    for name, value in exchange.headers:
        if name in CONDITIONAL_HEADERS:
            found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def cache_settings(config) -> CacheSettings:
    """The cache as configured; `--devel` checks every request against the disk."""
    return CacheSettings(0.0 if config.devel else config.static_cache_valid, config.static_cache_entries,
                         config.static_cache_memory, config.static_cache_file_size)


class StaticDirectory(RequestHandler):
    def __init__(self, point: str, root: str) -> None:
        self.point = point
        self.config = None
        self.cache = StaticCache(root, CacheSettings())
        self.root = self.cache.root.path

    def bind(self, server) -> None:
        """A cache of its own per serving process, made empty here, after any fork."""
        self.config = server.config
        self.cache = StaticCache(self.root, cache_settings(self.config))

    def __repr__(self) -> str:
        return f"<StaticDirectory {self.point} -> {self.root}>"

    def has_file(self, exchange: Exchange) -> bool:
        """Whether this directory answers the request (used when an app shares the point):
        from the cache, so an app's request costs no filesystem call once its path is known,
        or its first segment is not a name in the root (see listing.py)."""
        return self.cache.lookup(exchange.path_info).code != 404

    # serving
    def handle(self, exchange: Exchange) -> None:
        if exchange.method not in READS:
            self._error(exchange, 405, [("Allow", ALLOWED)])
            return
        path_info = exchange.path_info
        entry = self.cache.lookup(path_info)
        if entry.code == 200 and entry.directory and not exchange.path.endswith("/"):
            self._redirect_to_slash(exchange)
            return
        file = None
        if entry.code == 200 and entry.file.body is None:
            entry, file = self.cache.reopen(path_info, entry)
        if entry.code != 200:
            self._error(exchange, entry.code)
            return
        try:
            self._send(exchange, entry, file)
        except BaseException:
            if file is not None:
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

    # headers
    def _max_age(self, entry: Entry, exchange: Exchange) -> int | None:
        """set_max_age's value for this path, remembered with the entry (its path is fixed)."""
        max_age = entry.responses.get("max-age", _NO_MAX_AGE)
        if max_age is _NO_MAX_AGE:
            config = self.config
            max_age = config.max_age_for(exchange.script_name + exchange.path_info) if config else None
            entry.responses["max-age"] = max_age
        return max_age

    def _validators(self, entry: Entry, exchange: Exchange) -> list[tuple[str, str]]:
        facts = entry.file
        validators = [("Last-Modified", facts.last_modified), ("ETag", facts.etag)]
        max_age = self._max_age(entry, exchange)
        if max_age is not None:
            validators += [("Cache-Control", f"max-age={max_age}"), ("Expires", http_date(int(time.time()) + max_age))]
        return validators

    def _headers(self, entry: Entry, exchange: Exchange) -> list[tuple[str, str]]:
        return [("Content-Type", entry.file.content_type), *self._validators(entry, exchange),
                ("Accept-Ranges", "bytes")]

    def _prepared(self, entry: Entry, exchange: Exchange, code: int) -> PreparedResponse:
        """The whole 200 (a cached small file) or the 304 of an entry, built once, or once a
        second while it carries an Expires date."""
        stamp = http_date_now() if self._max_age(entry, exchange) is not None else None
        memo = entry.responses.get(code)
        if memo is not None and memo[0] == stamp:
            return memo[1]
        if code == 200:
            body = entry.file.body
            headers = self._headers(entry, exchange) + [("Content-Length", str(len(body)))]
            prepared = PreparedResponse(OK, headers, body)
        else:
            prepared = PreparedResponse(NOT_MODIFIED, self._validators(entry, exchange))  # RFC 9110 15.4.5
        entry.responses[code] = (stamp, prepared)
        return prepared

    # answers
    def _send(self, exchange: Exchange, entry: Entry, file: BinaryIO | None) -> None:
        request = request_headers(exchange)
        if not request and file is None:
            exchange.send_prepared(self._prepared(entry, exchange, 200))   # the fast path
            return
        facts = entry.file
        decided = evaluate_preconditions(exchange.method, request, facts.etag, facts.mtime)
        ranges = None
        if decided is None and exchange.method == "GET" and if_range_allows(
                request.get("if-range"), facts.etag, facts.last_modified):
            ranges = parse_range(request.get("range"), facts.size)
        if file is not None and (decided is not None or ranges == UNSATISFIABLE or exchange.method == "HEAD"):
            file.close()
            file = None
        if decided == 304:
            exchange.send_prepared(self._prepared(entry, exchange, 304))
        elif decided is not None:
            self._error(exchange, decided)
        elif ranges == UNSATISFIABLE:
            self._error(exchange, 416, [("Content-Range", f"bytes */{facts.size}")])
        elif ranges:
            self._send_ranges(exchange, entry, facts, ranges, file)
        elif file is None:
            exchange.send_prepared(self._prepared(entry, exchange, 200) if facts.body is not None
                                   else PreparedResponse(OK, self._whole_headers(entry, exchange)))
        else:
            exchange.add_done_callback(lambda _: file.close())
            exchange.send_response(OK, self._whole_headers(entry, exchange), [FileSegment(file, 0, facts.size)])

    def _whole_headers(self, entry: Entry, exchange: Exchange) -> list[tuple[str, str]]:
        return self._headers(entry, exchange) + [("Content-Length", str(entry.file.size))]

    def _send_ranges(self, exchange: Exchange, entry: Entry, facts: FileFacts, ranges: list[tuple[int, int]],
                     file: BinaryIO | None) -> None:
        """A 206 from the file sent with sendfile, or from the cached bytes of a small file
        (never from the disk: the cached bytes are the version its validators describe)."""
        source = file if file is not None else facts.body
        status, extra, pieces = range_response(ranges, facts.size, facts.content_type, source)
        headers = self._headers(entry, exchange)
        if len(ranges) > 1:
            headers = [header for header in headers if header[0] != "Content-Type"]
        if file is not None:
            exchange.add_done_callback(lambda _: file.close())
        exchange.send_response(status, headers + extra, pieces)
