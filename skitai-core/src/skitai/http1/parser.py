"""Sans-IO HTTP/1.1 request parser: bytes in, events out, no sockets.

httptools (llhttp) does the tokenising and already refuses most request-smuggling shapes
(Content-Length with Transfer-Encoding, duplicate Content-Length, obs-fold, bare CR, whitespace
before the colon, invalid chunk sizes, a final coding other than chunked). This module adds what
llhttp leaves to the server: size limits with the right status (414, 431, 413), the HTTP version
policy (505), Host rules, absolute-form targets, fields that must not appear in a trailer
section, and a uniform error event: whatever goes wrong inside a callback ends as a `ParseError`,
never as an exception out of `feed`.

`feed(data)` returns a list of events:
  * `RequestHead`          a request line and headers were parsed
  * `bytes`                a piece of the current request's body (chunked framing removed)
  * `END_OF_REQUEST`       the current request is complete
  * `ParseError`           the stream is unusable: answer `status` and close
  * `UpgradeRest`          the bytes after a bodiless request that asked for `Upgrade` (or a
                           CONNECT): they may belong to another protocol, so they are not parsed;
                           the connection feeds them back once it knows they are HTTP/1.1
After a `ParseError` the parser accepts no more data.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import httptools

from ..fields import FORBIDDEN_TRAILER_FIELDS

log = logging.getLogger("skitai.http1")

SUPPORTED_VERSIONS = ("1.1", "1.0")


@dataclass(slots=True)
class RequestHead:
    method: str
    target: str
    path: str
    query: str
    version: str
    headers: list[tuple[str, str]]
    keep_alive: bool
    content_length: int | None
    chunked: bool
    expect_continue: bool
    upgrade: str | None = None  # the Upgrade field, looked at by upgrades and WebSocket routing

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


@dataclass(slots=True)
class ParseError:
    status: int
    reason: str


class _EndOfRequest:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END_OF_REQUEST"


END_OF_REQUEST = _EndOfRequest()


@dataclass(slots=True)
class RequestTrailers:
    """A chunked body's trailer fields (lower-case names), just before its END_OF_REQUEST."""

    fields: list[tuple[str, str]]


@dataclass(slots=True)
class UpgradeRest:
    data: bytes


class _Refused(Exception):
    """Raised inside a parser callback to stop llhttp with our own status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class RequestParser:
    # State of the rarer paths that starts the same for every connection: class-level starting
    # values (immutable), so that a parser, made once per connection, stores only what differs.
    # What every request reads is set by `__init__` instead: CPython 3.11 reads a class-level
    # value through an instance on its slow, unspecialized path each time (until the instance
    # sets its own), which costs more than the store. The per-message state is (re)set by
    # `on_message_begin`; `_events` by `feed`, the only caller of the callbacks.
    _last_head: RequestHead | None = None
    _refusal: _Refused | None = None  # see _refuse
    in_head = False

    def __init__(self, max_request_line: int = 8190, max_header_size: int = 65536,
                 max_header_count: int = 100, max_body_size: int = 256 * 1024 * 1024) -> None:
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.max_body_size = max_body_size
        self._failed = False
        self.finished = False  # the last request of the connection was parsed
        self._synthetic_head = False  # see _ignore_upgrade
        self._parser = httptools.HttpRequestParser(self)

    # public
    def close(self) -> None:
        """The connection is gone: drop the httptools parser. It holds this object's bound
        callbacks, so the two form a reference cycle that only the cyclic garbage collector
        would free, one per connection; without it the parser goes with its last reference.
        A closed parser accepts no more data."""
        self._parser = None
        self.finished = True

    def feed(self, data: bytes) -> list:
        if self._failed or self.finished:
            return []
        events = self._events = []
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            offset = upgrade.args[0] if upgrade.args else len(data)
            head = self._last_head
            if head is not None and not head.has_body:
                # A bodiless Upgrade or CONNECT (a WebSocket handshake): whether what follows
                # is HTTP/1.1 depends on the answer, so the connection decides.
                self._parser = httptools.HttpRequestParser(self)
                self.in_head = False
                events.append(UpgradeRest(data[offset:]))
                return events
            rest = self._ignore_upgrade(events, data[offset:])
            if rest:
                events.extend(self.feed(rest))
            return events
        except httptools.HttpParserCallbackError as error:
            refusal, self._refusal = self._refusal, None
            if refusal is not None:
                self._fail(refusal.status, str(refusal))
            else:
                # A defect of ours that this request brought out: the stream cannot be trusted
                # any further, but the client still gets an answer and the transport survives.
                log.error("HTTP/1.1 parser callback failed", exc_info=error.__context__)
                self._fail(400, "malformed request")
        except httptools.HttpParserError as error:
            if not self.finished:
                self._fail(*self._classify(error))
        else:
            if self.in_head:
                self._raw_head_bytes += len(data)
                # httptools buffers a header value until its end; this bounds that buffer.
                if self._raw_head_bytes > 2 * (self.max_request_line + self.max_header_size):
                    self._fail(431, "request header section too large")
        return events

    def _ignore_upgrade(self, events: list, rest: bytes) -> bytes:
        """Go on as HTTP/1.1 after llhttp stopped at an Upgrade request with a body; returns the
        bytes to parse next.

        No upgrade handler took the request (that decision is made above this parser), so it is
        served as a plain request. llhttp ended the message at its head and left the body to the
        upgraded protocol; the body is still HTTP/1.1 here (`curl --http2 -d ...` sends
        `Upgrade: h2c` with a body), so a fresh parser reads it behind a synthetic head that
        produces no event, and the premature end of the request is taken back.
        """
        head = self._last_head
        self._parser = httptools.HttpRequestParser(self)
        self.in_head = False
        if head is None:
            return rest
        if events and events[-1] is END_OF_REQUEST:
            events.pop()
        framing = b"Transfer-Encoding: chunked" if head.chunked else b"Content-Length: %d" % head.content_length
        self._synthetic_head = True
        return b"PUT / HTTP/1.1\r\nHost: body\r\n" + framing + b"\r\n\r\n" + rest

    def _refuse(self, status: int, reason: str) -> _Refused:
        """The exception a callback raises to stop llhttp with our own status. It is kept here
        too: httptools reports only that a callback failed, and the exception that did is its
        error's `__context__` only when `feed` was not called while another one is handled."""
        self._refusal = _Refused(status, reason)
        return self._refusal

    def _fail(self, status: int, reason: str) -> None:
        self._failed = True
        self._events.append(ParseError(status, reason))

    def _classify(self, error: Exception) -> tuple[int, str]:
        message = str(error)
        if isinstance(error, httptools.HttpParserInvalidMethodError):
            return 400, "invalid method"
        if isinstance(error, httptools.HttpParserInvalidURLError):
            return 400, "invalid request target"
        if "Invalid HTTP version" in message or "Pause on PRI" in message:
            return 505, "HTTP version not supported"
        return 400, message or "malformed request"

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.in_head = True
        self._raw_head_bytes = 0
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._header_bytes = 0
        self._field_count = 0
        self._body_bytes = 0
        self._trailers: list[tuple[str, str]] | tuple = ()  # a list once a trailer field arrives

    def on_url(self, url: bytes) -> None:
        self._url += url
        # method, two spaces and "HTTP/1.1" are part of the request line too (the method is
        # only asked for near the limit: llhttp knows no method longer than 32 bytes)
        length = len(self._url) + 10
        if length + 32 > self.max_request_line and length + len(self._parser.get_method()) > self.max_request_line:
            raise self._refuse(414, "request line too long")

    def on_header(self, name: bytes, value: bytes | None) -> None:
        value = value or b""
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_header_size:
            raise self._refuse(431, "request header section too large")
        self._field_count += 1
        if self._field_count > self.max_header_count:
            raise self._refuse(431, "too many request header fields")
        if self.in_head:
            self._headers.append((_FIELD_NAMES.get(name) or _field_name(name),
                                  value.decode("latin-1").strip(" \t")))
            return
        # A trailer field of a chunked body: never mistaken for a header field (RFC 9110 6.5.1).
        # One that only the head may carry (framing, routing, credentials ...) makes the request
        # ambiguous, so it is refused; the others end the body (`RequestTrailers`, before
        # END_OF_REQUEST) for loop-thread readers such as a proxy (WSGI has no place for them).
        lower = name.decode("latin-1").lower()
        if lower in FORBIDDEN_TRAILER_FIELDS:
            raise self._refuse(400, f"{lower} is not allowed in a trailer section")
        if not self._trailers:
            self._trailers = []
        self._trailers.append((lower, value.decode("latin-1").strip(" \t")))

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self._synthetic_head:
            self._synthetic_head = False
            return
        parser = self._parser
        version = parser.get_http_version()
        if version not in SUPPORTED_VERSIONS:
            raise self._refuse(505, f"HTTP/{version} not supported")
        headers = self._headers
        target = self._url.decode("latin-1")
        content_length = None
        chunked = False
        expect_continue = False
        upgrade = None
        hosts = content_types = 0
        host_index = -1
        for index, (name, value) in enumerate(headers):
            if name not in _HEAD_FIELDS:  # every name compared below, and no other
                continue  # most fields (User-Agent, Accept ...): one lookup, not six comparisons
            if name == "host":
                hosts += 1
                host_index = index
            elif name == "content-type":
                content_types += 1
            elif name == "content-length":
                content_length = int(value)  # llhttp validated the digits and uniqueness
            elif name == "transfer-encoding":
                chunked = True  # llhttp refuses a final coding other than chunked
            elif name == "expect" and value.lower() == "100-continue":
                expect_continue = True
            elif name == "upgrade":
                upgrade = value if upgrade is None else f"{upgrade}, {value}"
        if hosts > 1:
            raise self._refuse(400, "more than one Host header")
        if content_types > 1:
            raise self._refuse(400, "more than one Content-Type header")  # a singleton (RFC 9110 5.3)
        if hosts == 0 and version == "1.1":
            raise self._refuse(400, "HTTP/1.1 request without Host")  # even in absolute-form (3.2)
        if hosts == 1 and headers[host_index][1] not in _VALID_HOSTS and not _valid_host(headers[host_index][1]):
            raise self._refuse(400, "invalid Host header")
        if chunked and version == "1.0":
            raise self._refuse(400, "Transfer-Encoding in an HTTP/1.0 request")  # RFC 9112 6.1
        if "#" in target:
            raise self._refuse(400, "fragment in the request target")
        method = parser.get_method()
        if method == b"CONNECT":
            # RFC 9112 3.2.3: a CONNECT's target is the authority to tunnel to, and nothing else;
            # it stands as the path, so handlers that take CONNECT (a proxy) find it there too.
            if not _AUTHORITY_FORM.match(target) or not _valid_host(target):
                raise self._refuse(400, "CONNECT target not in authority-form (host:port)")
            path, query = target, ""
        elif target[:1] == "/":  # startswith, without parsing its arguments
            path, _, query = target.partition("?")
        elif target == "*":
            if method != b"OPTIONS":
                raise self._refuse(400, "asterisk-form target outside OPTIONS")
            path, query = target, ""
        else:
            path, query, authority = self._split_absolute_form(target)
            if authority is not None:
                # RFC 9112 3.2.2: the target's authority replaces the Host header, or stands in
                # for the one an HTTP/1.0 request may leave out.
                if host_index < 0:
                    headers.append(("host", authority))
                else:
                    headers[host_index] = ("host", authority)
        if content_length is not None and content_length > self.max_body_size:
            raise self._refuse(413, "request body larger than the maximum upload size")
        head = self._last_head = RequestHead(
            _METHODS.get(method) or method.decode("ascii"), target, path, query, version, headers,
            parser.should_keep_alive(), content_length, chunked, expect_continue, upgrade,
        )
        self._events.append(head)

    def _split_absolute_form(self, target: str) -> tuple[str, str, str | None]:
        try:
            url = httptools.parse_url(target.encode("latin-1"))
        except httptools.HttpParserInvalidURLError:
            raise self._refuse(400, "invalid request target") from None
        if not url.host:
            # authority-form (CONNECT host:port): no path to serve
            return target, "", None
        if url.userinfo:
            raise self._refuse(400, "userinfo in the request target")
        # The authority as sent: parse_url drops an IPv6 literal's brackets, which a Host needs.
        authority = _AUTHORITY.match(target)
        if authority is None or not _valid_host(authority[1]):
            raise self._refuse(400, "invalid authority in the request target")
        path = (url.path or b"/").decode("latin-1")
        query = (url.query or b"").decode("latin-1")
        return path, query, authority[1]

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_size:
            raise self._refuse(413, "request body larger than the maximum upload size")
        self._events.append(body)

    def on_message_complete(self) -> None:
        if self._trailers:
            self._events.append(RequestTrailers(self._trailers))
        self._events.append(END_OF_REQUEST)
        if not self._parser.should_keep_alive():
            # RFC 9112 9.6: nothing after a request that ends the connection is processed.
            self.finished = True


# the header fields whose values on_headers_complete looks at (the names of its comparisons)
_HEAD_FIELDS = frozenset(("host", "content-type", "content-length", "transfer-encoding", "expect", "upgrade"))
_METHODS = {name.encode(): name for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_AUTHORITY = re.compile(r"[^:/?#]+://([^/?#]*)")  # scheme "://" authority (RFC 3986 3)
_AUTHORITY_FORM = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\[\]:/?#@]+):[0-9]{1,5}\Z")  # host ":" port
_HOST_FORBIDDEN = frozenset(' \t"<>\\^`{|}/?#@\x7f') | {chr(c) for c in range(0x20)}


# Header field names as received -> lower-case str: clients send the same few names on every
# request, so a repeat costs a lookup instead of two new strings, and the one str it gets has
# its hash already computed for every later lookup (the environ's keys, the Host checks).
_FIELD_NAMES: dict[bytes, str] = {}
FIELD_NAMES_SIZE = 1024
FIELD_NAME_MEMO_LENGTH = 64  # longer names are decoded every time, never held


def _field_name(name: bytes) -> str:
    lower = name.decode("latin-1").lower()
    if len(name) <= FIELD_NAME_MEMO_LENGTH and len(_FIELD_NAMES) < FIELD_NAMES_SIZE:
        _FIELD_NAMES[name] = lower
    return lower


_VALID_HOSTS: set[str] = set()  # hosts seen valid: a server hears a few, on every request
HOST_MEMO_LENGTH = 262  # longer Hosts are checked every time, never held (253 + ":" + port)


def _valid_host(host: str) -> bool:
    """An empty Host is allowed (RFC 9112 3.2); characters that cannot appear in an authority
    are not, so they never reach an app's SERVER_NAME or URL building."""
    if host in _VALID_HOSTS:
        return True
    if not _HOST_FORBIDDEN.isdisjoint(host):
        return False
    if len(host) <= HOST_MEMO_LENGTH:  # what clients send is held in bounded memory only
        if len(_VALID_HOSTS) >= 1024:
            _VALID_HOSTS.clear()
        _VALID_HOSTS.add(host)
    return True
