"""A stream's response body waiting to be sent: bytes and file segments, taken from the front
as a multiplexed protocol's flow control allows (HTTP/2 frames, HTTP/3 stream data).

The protocol plugins share it, so a large file body is read in blocks as the peer takes it, never
whole, and a large bytes body is cut without copying what stays.
"""
from __future__ import annotations

import os
from collections import deque

from .exchange import FileSegment

FILE_BLOCK = 1024 * 1024   # the most of a file body read at once


class Outbox:
    """A stream's response body waiting for flow-control window: bytes and file segments."""

    __slots__ = ("pieces", "pending", "ending", "trailers", "blocked_since")

    def __init__(self) -> None:
        self.pieces: deque = deque()
        self.pending = 0
        self.ending = False
        self.trailers: list[tuple[str, str]] | None = None
        self.blocked_since: float | None = None

    def add(self, piece: bytes | FileSegment) -> None:
        if isinstance(piece, FileSegment):
            if piece.count:
                self.pieces.append(FileSegment(piece.file, piece.offset, piece.count))
                self.pending += piece.count
        elif piece:
            self.pieces.append(piece)
            self.pending += len(piece)

    def take(self, size: int) -> bytes | memoryview:
        """Up to `size` bytes from the front (one piece at most), without copying what stays:
        a bytes piece is cut as a memoryview (re-slicing the rest for every frame made a large
        body cost time quadratic in its size), a file is read in blocks of up to `FILE_BLOCK`."""
        piece = self.pieces[0]
        if isinstance(piece, FileSegment):
            data = os.pread(piece.file.fileno(), min(size, piece.count, FILE_BLOCK), piece.offset)
            if not data:
                raise OSError("file shrank while being sent")
            piece.offset += len(data)
            piece.count -= len(data)
            if not piece.count:
                self.pieces.popleft()
        elif len(piece) <= size:
            data = self.pieces.popleft()
        else:
            view = piece if type(piece) is memoryview else memoryview(piece)
            data, self.pieces[0] = view[:size], view[size:]
        self.pending -= len(data)
        return data
