"""A request line of 8191 bytes (method SP target SP version, CRLF not counted): one over the limit."""


def make() -> bytes:
    target = b"/" + b"b" * (8191 - len(b"GET  HTTP/1.1") - 1)
    line = b"GET %s HTTP/1.1" % target
    assert len(line) == 8191
    return line + b"\r\nHost: example.com\r\n\r\n"
