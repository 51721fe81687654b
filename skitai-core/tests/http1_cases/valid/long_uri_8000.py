"""An 8000-byte request target: long, but under the 8190-byte request-line limit."""

TARGET = "/long/" + "a" * (8000 - len("/long/") - len("?q=1")) + "?q=1"


def make() -> bytes:
    assert len(TARGET) == 8000
    return b"GET %s HTTP/1.1\r\nHost: example.com\r\n\r\n" % TARGET.encode()


def expected() -> list:
    return [{"method": "GET", "target": TARGET, "path": TARGET[:-4], "query": "q=1", "version": "1.1",
             "headers": [["host", "example.com"]], "body": "", "keep_alive": True}]
