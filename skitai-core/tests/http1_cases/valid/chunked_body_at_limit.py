"""A chunked body of exactly 1048576 bytes in sixteen 64 KiB chunks: allowed."""

CHUNK = b"0123456789abcdef" * 4096  # 65536 bytes


def make() -> bytes:
    body = b"%X\r\n%s\r\n" % (len(CHUNK), CHUNK) * 16
    return (b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            + body + b"0\r\n\r\n")


def expected() -> list:
    return [{"method": "POST", "target": "/upload", "path": "/upload", "query": "", "version": "1.1",
             "headers": [["host", "example.com"], ["transfer-encoding", "chunked"]],
             "body": (CHUNK * 16).decode("ascii"), "keep_alive": True}]
