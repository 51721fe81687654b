"""Conditional request evaluation (RFC 9110 13.2.2), as a pure function of headers and validators."""
from __future__ import annotations

from ..httpdate import parse_http_date


def _etag_list(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def evaluate_preconditions(method: str, headers: dict[str, str], etag: str,
                           mtime: float) -> int | None:
    """412 or 304 when a precondition decides the answer, None to go on with the request.

    `headers` maps lower-case names to values; `mtime` is the resource's modification time in
    whole seconds (HTTP dates have no finer resolution).
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        tags = _etag_list(if_match)
        if "*" not in tags and not any(tag == etag and not tag.startswith("W/") for tag in tags):
            return 412
    else:
        since = headers.get("if-unmodified-since")
        if since is not None:
            when = parse_http_date(since)
            if when is not None and mtime > when:
                return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = _etag_list(if_none_match)
        if "*" in tags or any(_weak_match(tag, etag) for tag in tags):
            return 304 if method in ("GET", "HEAD") else 412
    elif method in ("GET", "HEAD"):
        since = headers.get("if-modified-since")
        if since is not None:
            when = parse_http_date(since)
            if when is not None and mtime <= when:
                return 304
    return None
