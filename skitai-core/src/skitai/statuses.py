"""Status lines and the small plain-text error responses the server itself produces."""
from __future__ import annotations

from http import HTTPStatus

_REASONS = {status.value: status.phrase for status in HTTPStatus}


def status_line(code: int) -> str:
    """'404 Not Found' for 404."""
    return f"{code} {_REASONS.get(code, 'Unknown')}"


def error_body(code: int, detail: str = "") -> bytes:
    text = status_line(code)
    if detail:
        text += f": {detail}"
    return (text + "\n").encode("utf-8", "replace")


def error_headers() -> list[tuple[str, str]]:
    return [("Content-Type", "text/plain; charset=utf-8")]
