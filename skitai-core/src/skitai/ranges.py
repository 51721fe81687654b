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


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | str | None:
    """[(first, last), ...] inclusive, `UNSATISFIABLE`, or None to ignore the header (absent,
    not bytes, or malformed: RFC 9110 says a server may ignore a Range it does not understand)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()):
            return None
        if not first:
            if not last:
                return None
            suffix = int(last)
            if suffix == 0:
                continue
            ranges.append((max(0, size - suffix), size - 1))
        else:
            start = int(first)
            end = size - 1 if not last else min(int(last), size - 1)
            if last and int(last) < start:
                return None
            if start >= size:
                continue
            ranges.append((start, end))
    if not ranges:
        return UNSATISFIABLE
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


def if_range_allows(if_range: str | None, etag: str | None, last_modified: str | None) -> bool:
    """True when the Range may be honoured: no If-Range, or it names the current representation
    (a strong ETag match, or the exact Last-Modified date)."""
    if not if_range:
        return True
    if_range = if_range.strip()
    if if_range.startswith('"') or if_range.startswith("W/"):
        return etag is not None and not etag.startswith("W/") and if_range == etag
    return last_modified is not None and if_range == last_modified


def range_response(ranges: list[tuple[int, int]], size: int, content_type: str | None,
                   file: BinaryIO, base_offset: int = 0
                   ) -> tuple[str, list[tuple[str, str]], list[BodyPiece]]:
    """Status, extra headers and body pieces of a 206 answer for `ranges` of `file`."""
    if len(ranges) == 1:
        start, end = ranges[0]
        return ("206 Partial Content",
                [("Content-Range", f"bytes {start}-{end}/{size}")],
                [FileSegment(file, base_offset + start, end - start + 1)])
    boundary = os.urandom(12).hex()
    pieces: list[BodyPiece] = []
    for start, end in ranges:
        part_head = f"--{boundary}\r\n"
        if content_type:
            part_head += f"Content-Type: {content_type}\r\n"
        part_head += f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n"
        pieces.append(("\r\n" if pieces else "").encode() + part_head.encode("latin-1"))
        pieces.append(FileSegment(file, base_offset + start, end - start + 1))
    pieces.append(f"\r\n--{boundary}--\r\n".encode("latin-1"))
    return ("206 Partial Content",
            [("Content-Type", f"multipart/byteranges; boundary={boundary}")],
            pieces)
