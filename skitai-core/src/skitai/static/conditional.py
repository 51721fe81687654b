"""Conditional request evaluation (RFC 9110 13.2.2), as a pure function of headers and validators."""
from __future__ import annotations

import re

from ..httpdate import parse_http_date

# An entity tag may itself contain commas, so a list is read tag by tag rather than split on ",".
_ENTITY_TAG = re.compile(r'\*|(?:W/)?"[^"]*"')


def _entity_tags(value: str) -> list[str]:
    return _ENTITY_TAG.findall(value)


def _strong_match(tag: str, etag: str) -> bool:
    """RFC 9110 8.8.3.2: both tags strong and identical (If-Match)."""
    return tag == etag and not etag.startswith("W/")


def _weak_match(tag: str, etag: str) -> bool:
    """RFC 9110 8.8.3.2: identical once the weakness markers are dropped (If-None-Match)."""
    return tag.removeprefix("W/") == etag.removeprefix("W/")


def _if_match_fails(headers: dict[str, str], etag: str, mtime: float) -> bool:
    """Steps 1 and 2: If-Match, or If-Unmodified-Since only when If-Match is absent."""
    if_match = headers.get("if-match")
    if if_match is not None:
        tags = _entity_tags(if_match)
        return "*" not in tags and not any(_strong_match(tag, etag) for tag in tags)
    since = headers.get("if-unmodified-since")
    when = parse_http_date(since) if since is not None else None
    return when is not None and mtime > when


def evaluate_preconditions(method: str, headers: dict[str, str], etag: str,
                           mtime: float) -> int | None:
    """412 or 304 when a precondition decides the answer, None to go on with the request.

    `headers` maps lower-case names to values; `mtime` is the resource's modification time in
    whole seconds (HTTP dates have no finer resolution).
    """
    if _if_match_fails(headers, etag, mtime):
        return 412
    safe = method in ("GET", "HEAD")
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        tags = _entity_tags(if_none_match)
        if "*" in tags or any(_weak_match(tag, etag) for tag in tags):
            return 304 if safe else 412
        return None
    since = headers.get("if-modified-since")
    if safe and since is not None:
        when = parse_http_date(since)
        if when is not None and mtime <= when:
            return 304
    return None
