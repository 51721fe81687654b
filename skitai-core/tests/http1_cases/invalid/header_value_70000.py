"""One header field with a 70000-byte value: over the 65536-byte header section limit."""


def make() -> bytes:
    return b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Huge: " + b"v" * 70000 + b"\r\n\r\n"
