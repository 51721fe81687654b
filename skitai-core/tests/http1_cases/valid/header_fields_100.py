"""Exactly 100 header fields (Host and X-Field-1 .. X-Field-99): the most allowed."""

HEADERS = [("Host", "example.com")] + [(f"X-Field-{n}", f"value {n}") for n in range(1, 100)]


def make() -> bytes:
    assert len(HEADERS) == 100
    lines = "".join(f"{name}: {value}\r\n" for name, value in HEADERS)
    return f"GET / HTTP/1.1\r\n{lines}\r\n".encode()


def expected() -> list:
    return [{"method": "GET", "target": "/", "path": "/", "query": "", "version": "1.1",
             "headers": [[name.lower(), value] for name, value in HEADERS], "body": "", "keep_alive": True}]
