"""A header section of about 60000 bytes in 10 fields: large, but under the 65536-byte limit."""

HEADERS = [("Host", "example.com")] + [(f"X-Big-{n}", chr(ord("a") + n) * 6000) for n in range(9)]


def make() -> bytes:
    section = "".join(f"{name}: {value}\r\n" for name, value in HEADERS)
    assert 54000 < len(section) < 60000
    return f"GET / HTTP/1.1\r\n{section}\r\n".encode()


def expected() -> list:
    return [{"method": "GET", "target": "/", "path": "/", "query": "", "version": "1.1",
             "headers": [[name.lower(), value] for name, value in HEADERS], "body": "", "keep_alive": True}]
