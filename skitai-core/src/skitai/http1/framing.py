"""HTTP/1.1 response framing: status line, headers, Content-Length vs chunked vs close.

Pure functions over values, so every framing decision is unit-testable without a socket.
"""
from __future__ import annotations

from dataclasses import dataclass

from .._version import __version__
from ..httpdate import http_date_now

SERVER_HEADER = f"Server: skitai/{__version__}\r\n"
CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"

LENGTH = "length"      # Content-Length delimits the body
CHUNKED = "chunked"    # Transfer-Encoding: chunked
UNTIL_CLOSE = "close"  # HTTP/1.0 without a length: the end of the connection ends the body
NO_BODY = "none"       # HEAD, 1xx, 204, 304


@dataclass(slots=True)
class Framing:
    head: bytes
    mode: str
    length: int | None
    keep_alive: bool
    code: int  # the status code, read from the status line once for every use of the memo


def status_code(status: str) -> int:
    return int(status[:3])


MEMO_SIZE = 256  # response shapes remembered per second (an app answers with a few)
_memo: dict = {}
_memo_date = ""


def frame_response(status: str, headers: list[tuple[str, str]], version: str, method: str,
                   keep_alive: bool, length: int | None = None,
                   extra: tuple[tuple[str, str], ...] = ()) -> Framing:
    """Choose the body framing and encode the response head.

    `length` is the body length when the caller knows it up front; a Content-Length in
    `headers` takes precedence. The app's Transfer-Encoding is dropped: the server owns framing.
    `extra`: the fields plugins add to every response (`skitai_register_response_fields`),
    each unless `headers` has one of that name.

    The result depends on nothing but the arguments and the Date, so it is remembered for the
    current second: an app answers most requests with the same few heads, and a repeat costs a
    dict lookup instead of the encoding. (A `Framing` is never changed by its users.)
    """
    global _memo, _memo_date
    date = http_date_now()
    if date is not _memo_date:
        _memo, _memo_date = {}, date
    try:
        key = (status, tuple(headers), version, method, keep_alive, length, extra)
        framing = _memo.get(key)
    except TypeError:  # an unhashable header value: encoded every time (it fails below anyway)
        return _frame_response(status, headers, version, method, keep_alive, length, extra)
    if framing is None:
        framing = _frame_response(status, headers, version, method, keep_alive, length, extra)
        if len(_memo) >= MEMO_SIZE:
            _memo = {}
        _memo[key] = framing
    return framing


def _frame_response(status: str, headers: list[tuple[str, str]], version: str, method: str,
                    keep_alive: bool, length: int | None, extra: tuple[tuple[str, str], ...]) -> Framing:
    code = status_code(status)
    lines = [f"HTTP/{'1.1' if version == '1.1' else '1.0'} {status}\r\n"]
    declared = None
    has_date = has_server = False
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            declared = int(value)
            continue
        elif lower == "transfer-encoding":
            continue
        elif lower == "connection":
            if "close" in value.lower():
                keep_alive = False
            continue
        elif lower == "date":
            has_date = True
        elif lower == "server":
            has_server = True
        lines.append(f"{name}: {value}\r\n")
    if declared is not None:
        length = declared
    if method == "HEAD" or code in (204, 304) or code < 200:
        mode = NO_BODY
        if length is not None and code not in (204, 304) and code >= 200:
            lines.append(f"Content-Length: {length}\r\n")
    elif length is not None:
        mode = LENGTH
        lines.append(f"Content-Length: {length}\r\n")
    elif version == "1.1":
        mode = CHUNKED
        lines.append("Transfer-Encoding: chunked\r\n")
    else:
        mode = UNTIL_CLOSE
        keep_alive = False
    if not keep_alive:
        lines.append("Connection: close\r\n")
    elif version != "1.1":
        lines.append("Connection: keep-alive\r\n")
    if not has_date:  # the app's own Date and Server are sent once, as it set them
        lines.append(f"Date: {http_date_now()}\r\n")
    if not has_server:
        lines.append(SERVER_HEADER)
    if extra:
        present = {name.lower() for name, _ in headers}
        lines.extend(f"{name}: {value}\r\n" for name, value in extra if name.lower() not in present)
    lines.append("\r\n")
    return Framing("".join(lines).encode("latin-1"), mode, length, keep_alive, code)


def frame_switch(status: str, headers: list[tuple[str, str]]) -> bytes:
    """The head of an answer after which the connection carries another protocol's bytes (a
    `101 Switching Protocols`, or a `2xx` to a CONNECT, which has no body framing, RFC 9110
    9.3.6): the fields as given (`Connection: Upgrade` included, which `frame_response` would
    take for a framing field)."""
    lines = [f"HTTP/1.1 {status}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    lines.append(f"Date: {http_date_now()}\r\n")
    lines.append(SERVER_HEADER)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def accepts_trailers(te: str | None) -> bool:
    """Whether a request's TE header lists "trailers" (RFC 9110 10.1.4): only then may a
    chunked response carry a trailer section the client will not choke on."""
    return te is not None and any(part.split(";")[0].strip().lower() == "trailers" for part in te.split(","))


def last_chunk(trailers: list[tuple[str, str]] | None) -> bytes:
    """The end of a chunked body, with its trailer section (RFC 9112 7.1.2) when there is one."""
    if not trailers:
        return LAST_CHUNK
    return b"0\r\n" + "".join(f"{name}: {value}\r\n" for name, value in trailers).encode("latin-1") + b"\r\n"
