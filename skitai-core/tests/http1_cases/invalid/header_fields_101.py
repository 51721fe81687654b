"""101 header fields (Host and X-Field-1 .. X-Field-100): one over the 100-field limit."""


def make() -> bytes:
    fields = b"".join(b"X-Field-%d: value %d\r\n" % (n, n) for n in range(1, 101))
    return b"GET / HTTP/1.1\r\nHost: example.com\r\n" + fields + b"\r\n"
