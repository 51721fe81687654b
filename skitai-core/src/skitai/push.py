"""Server push (HTTP/2: RFC 9113 8.4; HTTP/3: RFC 9114 4.6): which URIs may be pushed, and the
request a PUSH_PROMISE carries for them. Shared by the protocol plugins that push.

A promised request is a GET of the same origin as the request it accompanies (the client
would reject anything else, and a server must never speak for another origin). It inherits
the parent's `:scheme` and `:authority` and the fields that shape the answer the client would
have got had it asked itself: user agent, accepted encodings and languages, cookies. The block
then goes through the same validation as a received request, so a pushed request is exactly
what a client could have sent.
"""
from __future__ import annotations

import asyncio
import string
from typing import Sequence
from urllib.parse import quote, urlsplit

from .streamfields import BadRequest, request_fields

INHERITED = frozenset(("user-agent", "accept-encoding", "accept-language", "cookie"))
_SAFE = string.punctuation  # what a target keeps as it is; spaces, controls and non-ASCII get escaped


def push_target(uri: str, scheme: str, authority: str) -> str | None:
    """`uri` (a path, or an absolute URL) as the origin-form target of a same-origin request,
    or None when it names another origin or no absolute path."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme or parts.netloc:  # absolute or scheme-relative ("//host/x")
        if parts.scheme.lower() != scheme or parts.netloc.lower() != authority.lower():
            return None
    if not parts.path.startswith("/"):
        return None
    target = parts.path + ("?" + parts.query if parts.query else "")
    return quote(target, safe=_SAFE)


def promised_request(scheme: str, authority: str, target: str, parent_headers: Sequence[tuple[str, str]],
                     extra: Sequence[tuple[str, str]] = ()
                     ) -> tuple[list[tuple[bytes, bytes]], list[tuple[str, str]]]:
    """The PUSH_PROMISE header block and the request fields of the pushed exchange.

    Raises `BadRequest` when `extra` makes it a request no client could send (invalid or
    connection-specific fields, a `host` of another origin).
    """
    block = [(b":method", b"GET"), (b":scheme", scheme.encode("latin-1")),
             (b":authority", authority.encode("latin-1")), (b":path", target.encode("latin-1"))]
    override = {name.lower() for name, _ in extra}
    for name, value in parent_headers:
        if name in INHERITED and name not in override:
            block.append((name.encode("latin-1"), value.encode("latin-1")))
    try:
        block.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra)
    except UnicodeEncodeError:
        raise BadRequest("push header fields must be latin-1") from None
    _, _, fields, _ = request_fields(block)
    return block, fields


def on_loop(loop) -> bool:
    """Whether this thread runs `loop` (an app served with threads=0 runs on the loop thread):
    a push made there is promised at once, so its promise precedes the response calls that
    follow; from another thread it is handed to the loop, in order with those calls."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
