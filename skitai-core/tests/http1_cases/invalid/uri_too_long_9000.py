"""A 9000-byte request target: over the 8190-byte request-line limit."""


def make() -> bytes:
    target = b"/" + b"u" * 8999
    return b"GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n" % target
