"""A chunked body of 1048576 + 1 bytes (sixteen 64 KiB chunks and one byte): over the limit."""


def make() -> bytes:
    chunk = b"0123456789abcdef" * 4096  # 65536 bytes
    body = b"%X\r\n%s\r\n" % (len(chunk), chunk) * 16 + b"1\r\nx\r\n0\r\n\r\n"
    return (b"POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            + body)
