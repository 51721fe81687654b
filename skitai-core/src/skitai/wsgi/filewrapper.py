"""`wsgi.file_wrapper`: lets the server send a file with sendfile instead of iterating it."""
from __future__ import annotations

from typing import BinaryIO, Iterator


class FileWrapper:
    """Iterable like PEP 3333 asks (so middleware that iterates still works); the server
    recognises it and sends the file from its current position with sendfile."""

    def __init__(self, filelike: BinaryIO, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        while True:
            data = self.filelike.read(self.blksize)
            if not data:
                return
            yield data

    def fileno(self) -> int | None:
        """The descriptor to sendfile from, or None for file-likes without one (BytesIO)."""
        try:
            return self.filelike.fileno()
        except (AttributeError, OSError, ValueError):
            return None
