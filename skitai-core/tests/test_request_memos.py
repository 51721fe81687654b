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
    environ_bases = None

    def __init__(self, host, environ_bases=None, client=("127.0.0.1", 5000)):
        self.headers = [("host", host)]
        self.environ_bases = environ_bases
        self.client = client

    def header(self, name):
        return next((value for key, value in self.headers if key == name), None)


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


def test_a_connections_environ_keys_are_made_once_per_mount_and_never_shared():
    first_mount = environ.base_environ("", multithread=False)
    second_mount = environ.base_environ("/v2", multithread=False)
    bases = {}  # one connection's
    one = environ.build_environ(first_mount, Exchange("example", bases, ("10.0.0.1", 4321)))
    one["HTTP_X_ADDED"] = "by the app"  # an app's changes stay in its request's environ
    two = environ.build_environ(first_mount, Exchange("example", bases, ("10.0.0.1", 4321)))
    assert (two["REMOTE_ADDR"], two["REMOTE_PORT"], two["wsgi.url_scheme"]) == ("10.0.0.1", "4321", "http")
    assert "HTTP_X_ADDED" not in two and two is not one
    assert len(bases) == 1
    other = environ.build_environ(second_mount, Exchange("example", bases, ("10.0.0.1", 4321)))
    assert other["SCRIPT_NAME"] == "/v2" and len(bases) == 2
    # a request naming another Host than the connection's first gets its own names
    moved = environ.build_environ(first_mount, Exchange("other.example:81", bases, ("10.0.0.1", 4321)))
    assert (moved["SERVER_NAME"], moved["SERVER_PORT"]) == ("other.example", "81")
    assert (two["SERVER_NAME"], two["SERVER_PORT"]) == ("example", "80")
    # another connection (another dict) builds its own from its own client
    elsewhere = environ.build_environ(first_mount, Exchange("example", {}, ("10.0.0.2", 99)))
    assert (elsewhere["REMOTE_ADDR"], elsewhere["REMOTE_PORT"]) == ("10.0.0.2", "99")


def test_an_environ_without_a_connections_bases_is_the_same_environ():
    """A connection's last request (no `environ_bases`) gets its environ made at once: the
    same keys as through a connection's shared dict, with or without Host."""
    mount = environ.base_environ("/m", multithread=False)
    for host in ("example:81", None):
        alone = Exchange(host, None, ("10.0.0.3", 1234))
        shared = Exchange(host, {}, ("10.0.0.3", 1234))
        if host is None:
            alone.headers = shared.headers = [("accept", "*/*")]
        built = environ.build_environ(mount, alone)
        assert built == environ.build_environ(mount, shared)
        assert (built["REMOTE_ADDR"], built["REMOTE_PORT"], built["wsgi.url_scheme"]) == ("10.0.0.3", "1234", "http")
        assert (built["SERVER_NAME"], built["SERVER_PORT"]) == (("example", "81") if host else ("127.0.0.1", "80"))
        assert built["SCRIPT_NAME"] == "/m" and built["HTTP_ACCEPT" if host is None else "HTTP_HOST"]
        assert "REMOTE_ADDR" not in mount  # the mount's base is never changed


def test_field_names_are_decoded_once_in_bounded_memory():
    parser._FIELD_NAMES.clear()
    request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long-" + b"n" * 100 + b": 1\r\n\r\n"
    for _ in range(2):
        assert [name for name, _ in heads(request)[0].headers] == ["host", "x-long-" + "n" * 100]
    assert parser._FIELD_NAMES == {b"Host": "host"}  # the long name was decoded, not held
    for index in range(3000):
        assert heads(b"GET / HTTP/1.1\r\nHost: a\r\nX-N%d: 1\r\n\r\n" % index)[0].headers[1][0] == f"x-n{index}"
        assert len(parser._FIELD_NAMES) <= parser.FIELD_NAMES_SIZE


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


def test_the_status_memo_is_bounded_and_still_refuses_bad_statuses():
    for index in range(3000):
        handler._check_status(f"{200 + index % 300} Reason {index}")
        assert len(handler._VALID_STATUSES) <= handler.VALID_FIELDS_SIZE
    response = handler.WSGIResponse(None, False, 1.0)
    for bad in ["200", "20x OK", "200-OK", b"200 OK", ["200 OK"], None]:
        with pytest.raises(ValueError):
            handler.WSGIResponse(None, False, 1.0).start_response(bad, [])
        assert bad not in handler._VALID_STATUSES if isinstance(bad, str) else True
    response.start_response("299 Remembered", [])
    assert "299 Remembered" in handler._VALID_STATUSES


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
