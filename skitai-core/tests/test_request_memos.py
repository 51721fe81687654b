"""The per-request memos of the HTTP/1.1 and WSGI paths (valid Hosts, SERVER_NAME/SERVER_PORT,
encoded response heads, valid response header fields) and of the multiplexed protocols (request
header lists, `skitai.streamfields`) hold what clients and apps send in bounded memory: a
bounded number of entries, and never a Host longer than a host name and port can be, however many
a client sends; what they hold is only what was found valid."""
import pytest

from skitai import streamfields
from skitai.http1 import framing, parser
from skitai.http1.parser import RequestHead, RequestParser
from skitai.wsgi import environ, handler


def heads(requests: bytes) -> list:
    return [event for event in RequestParser().feed(requests) if isinstance(event, RequestHead)]


def test_long_hosts_are_checked_but_never_held():
    long_host = "a" * 5000 + ".example"
    assert heads(b"GET / HTTP/1.1\r\nHost: " + long_host.encode() + b"\r\n\r\n")[0].headers == [("host", long_host)]
    assert long_host not in parser._VALID_HOSTS
    assert heads(b"GET / HTTP/1.1\r\nHost: short.example\r\n\r\n")
    assert "short.example" in parser._VALID_HOSTS


def test_the_host_memo_is_bounded_and_still_refuses_bad_hosts():
    for index in range(3000):
        assert parser._valid_host(f"host{index}.example")
        assert len(parser._VALID_HOSTS) <= 1024
    assert not parser._valid_host("bad host")
    assert not parser._valid_host("x/y")


class Exchange:
    scheme = "http"
    server = ("127.0.0.1", 80)
    method, path_info, query, target, protocol_name = "GET", "/", "", "/", "HTTP/1.1"
    body, client, transaction = None, ("127.0.0.1", 5000), None

    def __init__(self, host):
        self.headers = [("host", host)]


def test_server_names_are_remembered_in_bounded_memory():
    base = environ.base_environ("", multithread=False)
    long_host = "b" * 5000 + ":8080"
    built = environ.build_environ(base, Exchange(long_host))
    assert (built["SERVER_NAME"], built["SERVER_PORT"]) == ("b" * 5000, "8080")
    assert (long_host, "http") not in environ._SERVER_NAMES
    for index in range(3000):
        built = environ.build_environ(base, Exchange(f"h{index}.example:81"))
        assert (built["SERVER_NAME"], built["SERVER_PORT"]) == (f"h{index}.example", "81")
        assert len(environ._SERVER_NAMES) <= 1024


def test_the_response_head_memo_is_bounded():
    for index in range(1000):
        head = framing.frame_response("200 OK", [("X-Id", str(index))], "1.1", "GET", True, 2).head
        assert f"X-Id: {index}\r\n".encode() in head
        assert len(framing._memo) <= framing.MEMO_SIZE


def test_the_response_field_memo_is_bounded_and_still_refuses_bad_fields():
    for index in range(3000):
        assert handler._check_fields([("X-Id", str(index))]) is False
        assert len(handler._VALID_FIELDS) <= handler.VALID_FIELDS_SIZE
    # a remembered `Trailer` field still declares trailers on its next use
    trailer = ("Trailer", "X-Checksum")
    assert handler._check_fields([trailer]) is True
    assert handler._check_fields([("Content-Type", "text/plain"), trailer]) is True
    for bad in [("X-Bad", "a\r\nb"), ("Bad Name:", "x"), ("Content-Length", "12a")]:
        with pytest.raises(ValueError):
            handler._check_fields([bad])
        assert bad not in handler._VALID_FIELDS
    for bad in [("X-Number", 5), ("X-Unhashable", ["x"])]:
        with pytest.raises(TypeError):
            handler._check_fields([bad])
    assert handler._check_fields([["X-List", "x"]]) is False  # a list pair is checked, not held


REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/a?b=1"), (b":authority", b"example"),
           (b"accept", b"*/*")]


def test_a_request_header_list_is_checked_once_and_answered_alike():
    streamfields._fields_memo.clear()
    first = streamfields.request_fields(REQUEST)
    assert first == ("GET", "/a?b=1", [("host", "example"), ("accept", "*/*")], None)
    assert len(streamfields._fields_memo) == 1
    again = streamfields.request_fields(list(REQUEST))
    assert again == first
    again[2].append(("x-added", "by the caller"))  # each caller gets a list of its own
    assert streamfields.request_fields(REQUEST) == first


def test_the_request_fields_memo_is_bounded_and_holds_only_valid_small_lists():
    streamfields._fields_memo.clear()
    for index in range(1000):
        streamfields.request_fields([*REQUEST, (b"x-n", str(index).encode())])
        assert len(streamfields._fields_memo) <= streamfields.FIELDS_MEMO_SIZE
    streamfields._fields_memo.clear()
    large = [*REQUEST, (b"x-large", b"v" * streamfields.FIELDS_MEMO_BYTES)]
    assert streamfields.request_fields(large)[0] == "GET"
    assert not streamfields._fields_memo  # checked, never held
    bad = [*REQUEST, (b"connection", b"close")]
    for _ in range(2):  # refused every time, never remembered
        with pytest.raises(streamfields.BadRequest):
            streamfields.request_fields(bad)
    assert not streamfields._fields_memo
