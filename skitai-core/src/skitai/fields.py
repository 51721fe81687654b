"""Facts about HTTP fields that every protocol of the server (and its plugins) must agree on.

Public: the HTTP/2 plugin checks request trailers against the same list as the core's HTTP/1.1
parser, and the WSGI layer checks the trailers an app sends with it.
"""
from __future__ import annotations

# Fields that must not appear in a trailer section (RFC 9110 6.5.1): their meaning is needed
# before the content is processed, so a recipient would already have acted without them and a
# trailer copy could only contradict or smuggle past what the head said. RFC 9110 names the
# categories; the fields are those of each category (RFC 9110, RFC 9112, RFC 6265):
FORBIDDEN_TRAILER_FIELDS = frozenset((
    # message framing (RFC 9112 6, 7)
    "content-length", "transfer-encoding", "trailer",
    # connection management, hop by hop (RFC 9110 7.6.1, 7.8; RFC 9112 9.3; proxy-connection is
    # the legacy spelling HTTP/2 and HTTP/3 name as connection-specific)
    "connection", "keep-alive", "proxy-connection", "te", "upgrade",
    # routing (RFC 9110 7.2, 7.6.2)
    "host", "max-forwards",
    # request modifiers: controls (RFC 9110 10.1; RFC 9111 5.2, 5.4)
    "cache-control", "expect", "pragma", "range",
    # request modifiers: conditionals (RFC 9110 13.1)
    "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range",
    # authentication (RFC 9110 11.6, 11.7; cookies: RFC 6265). Authentication-Info and
    # Proxy-Authentication-Info are not here: RFC 9110 11.6.3 and 11.7.3 allow them in trailers.
    "authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
    "cookie", "set-cookie",
    # response control data (RFC 9110 10.2; RFC 9111 5.1, 5.3; Warning: RFC 7234 5.5, obsolete)
    "age", "expires", "date", "location", "retry-after", "vary", "warning",
    # how to process the content (RFC 9110 8.3, 8.4, 14.4)
    "content-type", "content-encoding", "content-range",
))
