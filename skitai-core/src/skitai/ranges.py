"""Byte ranges (RFC 9110 14): parsing `Range`, `If-Range`, and building 206 bodies.

Shared by static files and `wsgi.file_wrapper` responses. Overlapping or adjacent ranges are
coalesced and the count is capped, so a request cannot make the server send the same bytes many
times over (range amplification).
"""
from __future__ import annotations

import os
from typing import BinaryIO

from .exchange import BodyPiece, FileSegment

MAX_RANGES = 16
UNSATISFIABLE = "unsatisfiable"
# Any position past this is past the end of every file; longer digit strings are not converted
# (int() refuses more than a few thousand digits and would turn a bad header into a 500).
_FAR = 1 << 63


def _position(text: str) -> int | None:
    """A non-negative decimal from a range spec, or None when it is not ASCII digits (str.isdigit
    alone accepts '²' and other Unicode digits that int() then refuses)."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    text = text.lstrip("0") or "0"
    return int(text) if len(text) <= 18 else _FAR


def _parse_spec(part: str, size: int) -> tuple[int, int] | str | None:
    """One byte-range-spec as (first, last), `UNSATISFIABLE` when it selects nothing in `size`
    bytes, or None when it is malformed (which voids the whole header)."""
    first_text, dash, last_text = part.partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash:
        return None
    if not first_text:
        suffix = _position(last_text)
        if suffix is None:
            return None
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return (max(0, size - suffix), size - 1)
    first = _position(first_text)
    last = _position(last_text) if last_text else _FAR
    if first is None or last is None or last < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return (first, min(last, size - 1))


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping and adjacent ranges merged, capped at MAX_RANGES parts."""
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end + 1:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    if len(merged) > MAX_RANGES:
        return [(merged[0][0], merged[-1][1])]
    return merged


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """[(first, last), ...] inclusive, `UNSATISFIABLE`, or None to ignore the header (absent,
    not bytes, or malformed: RFC 9110 14.2 lets a server ignore a Range it does not understand)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    ranges: list[tuple[int, int]] = []
    for part in parts:
        selected = _parse_spec(part, size)
        if selected is None:
            return None
        if selected != UNSATISFIABLE:
            ranges.append(selected)
    if not parts:
        return None
    return _coalesce(ranges) if ranges else UNSATISFIABLE


def if_range_allows(if_range: str | None, etag: str | None, last_modified: str | None) -> bool:
    """True when the Range may be honoured: no If-Range, or it names the current representation
    (a strong ETag match, or the exact Last-Modified date)."""
    if not if_range:
        return True
    if_range = if_range.strip()
    if if_range.startswith('"') or if_range.startswith("W/"):
        return etag is not None and not etag.startswith("W/") and if_range == etag
    return last_modified is not None and if_range == last_modified


def _piece(source: BinaryIO | bytes, offset: int, count: int) -> BodyPiece:
    if isinstance(source, bytes):
        return source[offset:offset + count]
    return FileSegment(source, offset, count)


def range_response(ranges: list[tuple[int, int]], size: int, content_type: str | None,
                   source: BinaryIO | bytes, base_offset: int = 0
                   ) -> tuple[str, list[tuple[str, str]], list[BodyPiece]]:
    """Status, extra headers and body pieces of a 206 answer for `ranges` of `source`: an open
    file (pieces sent with sendfile) or the bytes of a file held in memory."""
    if len(ranges) == 1:
        start, end = ranges[0]
        return ("206 Partial Content",
                [("Content-Range", f"bytes {start}-{end}/{size}")],
                [_piece(source, base_offset + start, end - start + 1)])
    boundary = os.urandom(12).hex()
    pieces: list[BodyPiece] = []
    for start, end in ranges:
        part_head = f"--{boundary}\r\n"
        if content_type:
            part_head += f"Content-Type: {content_type}\r\n"
        part_head += f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n"
        pieces.append(("\r\n" if pieces else "").encode() + part_head.encode("latin-1"))
        pieces.append(_piece(source, base_offset + start, end - start + 1))
    pieces.append(f"\r\n--{boundary}--\r\n".encode("latin-1"))
    return ("206 Partial Content",
            [("Content-Type", f"multipart/byteranges; boundary={boundary}")],
            pieces)
