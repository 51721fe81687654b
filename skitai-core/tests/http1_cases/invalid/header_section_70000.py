"""A header section of about 70000 bytes in 37 fields: over the 65536-byte limit, under 100 fields."""


def make() -> bytes:
    fields = b"".join(b"X-Filler-%02d: %s\r\n" % (n, b"f" * 1920) for n in range(36))
    section = b"Host: example.com\r\n" + fields
    assert 68000 < len(section) < 72000
    return b"GET / HTTP/1.1\r\n" + section + b"\r\n"
