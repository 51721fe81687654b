"""A request line of exactly 8190 bytes (method SP target SP version, CRLF not counted): allowed."""

TARGET = "/" + "b" * (8190 - len("GET  HTTP/1.1") - 1)


def make() -> bytes:
    line = b"GET %s HTTP/1.1" % TARGET.encode()
    assert len(line) == 8190
    return line + b"\r\nHost: example.com\r\n\r\n"


def expected() -> list:
    return [{"method": "GET", "target": TARGET, "path": TARGET, "query": "", "version": "1.1",
             "headers": [["host", "example.com"]], "body": "", "keep_alive": True}]
