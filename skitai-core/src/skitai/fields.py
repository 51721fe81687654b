"""HTTP field names with rules of their own, shared by every protocol."""

# RFC 9110 6.5.1: fields a trailer section must not carry (framing, routing, authentication,
# request modifiers, response control, and the content's own description), lower case.
FORBIDDEN_TRAILER_FIELDS = frozenset((
    "content-length", "transfer-encoding", "trailer", "te", "host", "connection", "keep-alive",
    "proxy-connection", "upgrade", "content-type", "content-encoding", "content-range",
    "authorization", "proxy-authorization", "cookie", "set-cookie", "www-authenticate",
    "proxy-authenticate", "expect", "max-forwards", "cache-control", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since", "if-range", "range", "age", "expires", "date",
    "location", "retry-after", "vary", "warning",
))
