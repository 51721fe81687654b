"""`skitai.HTTPError`: an exception that stands for an HTTP error answer.

Raised by an app (or by a corequest's `fetch()`/`one()`/`commit()`) inside a request, it becomes
that status in the WSGI container instead of a 500, so an app can let a failed upstream call or
a missing record end the request with the right code. Frameworks that catch every exception
themselves (Flask, Django) can hand it back as a response: it is a WSGI app too, e.g. with Flask
`app.register_error_handler(skitai.HTTPError, lambda error: error)`.
"""
from __future__ import annotations

from .statuses import error_body, error_headers, status_line


class HTTPError(Exception):
    """`HTTPError("404 Not Found")`, `HTTPError(404)` or `HTTPError(504, "upstream timed out")`."""

    def __init__(self, status: int | str, explain: str = "") -> None:
        if isinstance(status, int):
            status = status_line(status)
        if not (isinstance(status, str) and status[:3].isdigit() and 100 <= int(status[:3]) <= 599
                and (len(status) == 3 or status[3] == " ")):
            raise ValueError(f"HTTPError needs a status like 404 or '404 Not Found', not {status!r}")
        self.code = int(status[:3])
        self.status = status if len(status) > 3 else status_line(self.code)
        self.explain = explain
        super().__init__(f"{self.status}: {explain}" if explain else self.status)

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        """The error as a plain-text WSGI response."""
        start_response(self.status, error_headers())
        return [error_body(self.code, self.explain)]
