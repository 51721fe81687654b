"""A Content-Length body of exactly 1048576 bytes, the configured maximum: allowed."""
import base64

BODY = bytes(range(256)) * 4096


def make() -> bytes:
    assert len(BODY) == 1048576
    return b"POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1048576\r\n\r\n" + BODY


def expected() -> list:
    return [{"method": "POST", "target": "/upload", "path": "/upload", "query": "", "version": "1.1",
             "headers": [["host", "example.com"], ["content-length", "1048576"]],
             "body_b64": base64.b64encode(BODY).decode(), "keep_alive": True}]
