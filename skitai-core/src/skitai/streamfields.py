"""The header fields of a request and a response on a stream of a multiplexed protocol: HTTP/2
(RFC 9113 8.2-8.3) and HTTP/3 (RFC 9114 4.2-4.3) state the same rules, so both plugins use this.

`request_fields` turns a request's header list into method, target and header fields,
validated in one pass (the HTTP/2 plugin switches h2's own validation off: it walks the list
about ten times and cost a fifth of the time of a small request). It enforces what makes a
malformed request, which the connection answers with a stream reset:

* field names in lower case, made of token characters; values without NUL, CR, LF and without
  leading or trailing whitespace (they would reach the WSGI environ);
* pseudo-header fields known, once each, before the regular fields; `:method`, `:scheme` and a
  `:path` in origin or asterisk form are required, except in a plain CONNECT (RFC 9113 8.5),
  which has `:authority` alone and gets it as its target; `:protocol` only on a CONNECT, which
  it makes an extended CONNECT (RFC 8441: a WebSocket);
* no connection-specific fields, and `te` only as "trailers";
* `host`, when sent, agrees with `:authority`, which otherwise becomes the `host` field so apps
  and the WSGI environ find it where they look.

`check_trailers` holds a request's trailer section to the same field rules, without any
pseudo-header field (RFC 9113 8.1) and without the fields RFC 9110 6.5.1 keeps out of trailers
(`skitai.fields.FORBIDDEN_TRAILER_FIELDS`: framing, routing, authentication, content
description ...): such a request is malformed, not quietly stripped. The trailers themselves are
not passed on (WSGI has no place for them).

Clients send the same request header lists again and again (a page's assets, an API client's
calls, every request of a load generator), so `request_fields` remembers the results for the
last `FIELDS_MEMO_SIZE` small lists it accepted: a list is its own key, and the answer is a pure
function of it. A list of more than `FIELDS_MEMO_BYTES` of names and values is checked every
time and never held, so the memo stays small whatever clients send.
"""
from __future__ import annotations

import re
import time
from email.utils import formatdate
from typing import Sequence

from ._version import __version__
from .fields import FORBIDDEN_TRAILER_FIELDS

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z").match
_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z").search
_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path", b":protocol"))
_CONNECTION_SPECIFIC = frozenset((b"connection", b"keep-alive", b"proxy-connection",
                                  b"transfer-encoding", b"upgrade"))
_NOT_TRAILERS = frozenset(name.encode("ascii") for name in FORBIDDEN_TRAILER_FIELDS)
FIELDS_MEMO_SIZE = 128
FIELDS_MEMO_BYTES = 4096
_fields_memo: dict[tuple, tuple[str, str, tuple[tuple[str, str], ...], str | None]] = {}


class BadRequest(ValueError):
    """A malformed request (RFC 9113 8.1.1, RFC 9114 4.1.2): its stream is reset."""


def request_fields(headers: Sequence[tuple[bytes, bytes]]
                   ) -> tuple[str, str, list[tuple[str, str]], str | None]:
    """Method, target, fields (a new list each time), and the `:protocol` of an extended
    CONNECT (else None)."""
    key = tuple(headers)
    known = _fields_memo.get(key)
    if known is None:
        known, size = _check_request(key)
        if size <= FIELDS_MEMO_BYTES:
            if len(_fields_memo) >= FIELDS_MEMO_SIZE:
                _fields_memo.clear()
            _fields_memo[key] = known
    method, target, fields, protocol = known
    return method, target, list(fields), protocol


def _check_request(headers: tuple[tuple[bytes, bytes], ...]
                   ) -> tuple[tuple[str, str, tuple[tuple[str, str], ...], str | None], int]:
    """`request_fields`' answer (its fields a tuple) and the size of the names and values."""
    pseudo: dict[bytes, bytes] = {}
    fields: list[tuple[str, str]] = []
    host = None
    size = 0
    for name, value in headers:
        size += len(name) + len(value)
        if value and _BAD_VALUE(value):
            raise BadRequest(f"invalid value of {name!r}")
        if name[:1] == b":":
            if fields or name not in _PSEUDO or name in pseudo:
                raise BadRequest(f"misplaced, unknown or repeated pseudo-header {name!r}")
            pseudo[name] = value
            continue
        if not _TOKEN(name):
            raise BadRequest(f"invalid field name {name!r}")
        if name in _CONNECTION_SPECIFIC or (name == b"te" and value != b"trailers"):
            raise BadRequest(f"connection-specific field {name!r}")
        text = value.decode("latin-1")
        if name == b"host":
            host = text
        fields.append((name.decode("latin-1"), text))
    method, path = pseudo.get(b":method"), pseudo.get(b":path")
    authority = pseudo.get(b":authority")
    if method == b"CONNECT" and b":protocol" not in pseudo:
        # RFC 9113 8.5: a CONNECT names only the authority to tunnel to; its target is that
        # authority (as HTTP/1.1's authority-form `CONNECT host:port`)
        if not authority or b":scheme" in pseudo or path is not None:
            raise BadRequest("CONNECT with :scheme or :path, or without :authority")
        path = authority
    elif not method or b":scheme" not in pseudo or not path or (path[:1] != b"/" and path != b"*"):
        raise BadRequest("request without :method, :scheme and a usable :path")
    if authority is not None:
        authority = authority.decode("latin-1")
        if host is None:
            fields.insert(0, ("host", authority))
        elif host != authority:
            raise BadRequest("host differs from :authority")
    if not _TOKEN(method.lower()):
        raise BadRequest("invalid :method")
    protocol = pseudo.get(b":protocol")
    if protocol is not None:
        if method != b"CONNECT" or not protocol:
            raise BadRequest(":protocol outside an extended CONNECT")
        protocol = protocol.decode("latin-1")
    return (method.decode("ascii"), path.decode("latin-1"), tuple(fields), protocol), size


def check_trailers(headers: Sequence[tuple[bytes, bytes]]) -> None:
    """Raise BadRequest when a trailer section makes the request malformed."""
    for name, value in headers:
        if name[:1] == b":":
            raise BadRequest(f"pseudo-header field {name!r} in trailers")
        if not _TOKEN(name) or (value and _BAD_VALUE(value)):
            raise BadRequest(f"invalid trailer field {name!r}")
        if name in _NOT_TRAILERS:
            raise BadRequest(f"field {name!r} is not allowed in trailers (RFC 9110 6.5.1)")


# Connection-specific fields have no meaning in HTTP/2 and HTTP/3 and make a peer reject the
# response (RFC 9113 8.2.2, RFC 9114 4.2); apps written for HTTP/1.1 send them (`Connection:
# close`), so they are dropped.
CONNECTION_SPECIFIC = frozenset((
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
    "http2-settings"))
# Every response carries Date (RFC 9110 6.6.1: an origin server with a clock must send it in
# 2xx-4xx answers) and Server, as HTTP/1.1 responses do, unless the app sent its own.
SERVER = f"skitai/{__version__}".encode("ascii")
_date_second, _date_value = -1, b""


def http_date_now() -> bytes:
    """The Date value, formatted once a second."""
    global _date_second, _date_value
    now = int(time.time())
    if now != _date_second:
        _date_value, _date_second = formatdate(now, usegmt=True).encode("ascii"), now
    return _date_value


def response_fields(headers: Sequence[tuple[str, str]], extra: Sequence[tuple[bytes, bytes]] = ()
                    ) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """An app's response header list as a multiplexed protocol sends it (lower-case bytes,
    connection-specific fields dropped, Date and Server added unless present, then the `extra`
    fields plugins add, `skitai_register_response_fields`, unless present), and the
    Content-Length it declares (None when it declares none). The status pseudo-field and a
    computed Content-Length are the caller's."""
    out = []
    declared = None
    dated = named = False
    for name, value in headers:
        key = name.lower()
        if key in CONNECTION_SPECIFIC:
            continue
        if key == "content-length":
            declared = int(value)
        elif key == "date":
            dated = True
        elif key == "server":
            named = True
        out.append((key.encode("latin-1"), value.encode("latin-1")))
    if not dated:
        out.append((b"date", http_date_now()))
    if not named:
        out.append((b"server", SERVER))
    if extra:
        present = {name for name, _ in out}
        out.extend(field for field in extra if field[0] not in present)
    return out, declared


def trailer_fields(trailers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Trailers set on an exchange, as a multiplexed protocol sends them."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in trailers
            if name.lower() not in CONNECTION_SPECIFIC]
