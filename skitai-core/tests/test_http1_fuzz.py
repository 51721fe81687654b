"""Fuzzing HTTP/1.1 with hypothesis: the sans-IO parser, the connection (parser, dispatch and
response framing) over a recording transport, and a live server over real sockets.

Inputs are structured requests (valid, and mutated: random methods, targets in every form,
header fields, chunked bodies with extensions and trailers, pipelining) and random bytes, cut
at random points. Properties: nothing raises out of the protocol and nothing is logged as an
error; every connection ends with well-formed answers, an error answer only ever last and
followed by a close; after valid input a clean request is still answered.

Bounded to seconds in the suite; `SKITAI_FUZZ_EXAMPLES=N` (the `fuzz` nox session) runs N
examples per test instead.
"""
from __future__ import annotations

import logging
import re
import socket
import string
import time
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import pytest
from h1util import Harness, RecordingTransport, settle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skitai.http1.connection import H1Connection
from skitai.http1.parser import END_OF_REQUEST, ParseError, RequestHead, RequestParser, UpgradeRest
from skitai.testing import ServerThread, fuzz_examples

FUZZ = settings(max_examples=fuzz_examples(200), deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SOCKET_FUZZ = settings(FUZZ, max_examples=fuzz_examples(25))
ERROR_STATUSES = {400, 408, 413, 414, 417, 426, 431, 505}
PROBE = b"GET /probe HTTP/1.1\r\nHost: probe\r\n\r\n"

# --- request generation ---------------------------------------------------------------------
# Each part of a request has a well-formed choice and a wild one; a request is either clean (all
# parts well-formed, so it reaches the app, the framing and the next pipelined request) or, half
# the time, made of parts that are each wild one time in four, to probe every error path.
TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
token = st.text(TCHAR, min_size=1, max_size=10)
visible = st.text(string.ascii_letters + string.digits + " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t", max_size=24)
path = st.text(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%/", max_size=16).map(lambda p: "/" + p)
query = st.one_of(st.just(""),
                  st.text(string.ascii_letters + string.digits + "=&%+", max_size=12).map(lambda q: "?" + q))
origin_form = st.builds(str.__add__, path, query)
good_host = st.sampled_from(["example.com", "example.com:8080", "[::1]", "[::1]:8080", "127.0.0.1:80", ""])
wild_host = st.one_of(st.sampled_from(["a@b", "h:", "[::1", "a b", "a/b", "x\x7f"]), token)
PARTS = {  # name: (well-formed, wild)
    "method": (st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]),
               # no HEAD: the answers' checker cannot tell a body-less HEAD answer
               st.one_of(st.sampled_from(["CONNECT", "TRACE", "PRI", "get"]), token).filter(
                   lambda name: name != "HEAD")),
    "target": (st.one_of(origin_form, st.builds("http://{}{}".format, good_host, origin_form)),
               st.one_of(st.builds("{}://{}{}".format, st.sampled_from(["http", "HTTP", "ftp", "x"]),
                                   st.one_of(good_host, wild_host), st.one_of(origin_form, st.just(""))),
                         st.sampled_from(["*", "example.com:443", "", "/a#frag", "//x", "/a b", "/\x00"]), token)),
    "version": (st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]),
                st.sampled_from(["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "http/1.1", "HTTP/1.1 ", ""])),
    "host": (good_host.map(lambda host: [("Host", host)]),
             st.one_of(st.just([]), wild_host.map(lambda host: [("Host", host)]),
                       st.just([("Host", "a"), ("Host", "b")]))),
    "fields": (st.lists(st.sampled_from([
                   ("User-Agent", "fuzz"), ("Accept", "*/*"), ("X-Custom", "a, b"), ("Connection", "keep-alive"),
                   ("Connection", "close"), ("Expect", "100-continue"), ("Upgrade", "websocket"),
                   ("Connection", "Upgrade"), ("Upgrade", "h2c"), ("TE", "trailers"), ("Content-Type", "text/plain"),
                   ("Cookie", "a=b"), ("Trailer", "X-Checksum")]), max_size=4),
               st.lists(st.one_of(
                   st.tuples(st.one_of(st.sampled_from(["Content-Length", "Transfer-Encoding", "Connection", "Expect",
                                                        "Upgrade", "Content-Type", "TE", "Keep-Alive"]), token),
                             st.one_of(st.sampled_from(["chunked", "gzip, chunked", "chunked, gzip", "close", "0", "-1",
                                                        "18446744073709551616"]), visible)),
                   st.sampled_from([("Bad Name", "x"), (" Folded", "x"), ("X", "a\rb"), ("X", "a\x00")])),
                   min_size=1, max_size=4)),
    "framing": (st.sampled_from(["none", "length", "chunked"]), st.just("wrong length")),
    "trailers": (st.lists(st.sampled_from([("X-Checksum", "abc"), ("Server-Timing", "db;dur=5")]), max_size=2),
                 st.lists(st.sampled_from([("Host", "evil"), ("Content-Length", "3"), ("Content-Type", "x/y"),
                                           ("Authorization", "x"), ("Bad Name", "x")]), min_size=1, max_size=2)),
}


@st.composite
def any_request(draw) -> bytes:
    """A request of any shape (see PARTS)."""
    clean = draw(st.booleans())

    def part(name):
        good, wild = PARTS[name]
        return draw(good if clean or draw(st.integers(0, 3)) else wild)

    version = part("version")
    head = f"{part('method')} {part('target')} {version}\r\n"
    host = part("host") if version != "HTTP/1.0" or draw(st.booleans()) else []  # optional in HTTP/1.0
    head += "".join(f"{name}: {value}\r\n" for name, value in host + part("fields"))
    framing = part("framing")
    body = draw(st.binary(max_size=32))
    if framing == "length":
        head += f"Content-Length: {len(body)}\r\n"
    elif framing == "wrong length":
        head += f"Content-Length: {len(body) + draw(st.integers(-5, 5))}\r\n"
    elif framing == "chunked":
        head += "Transfer-Encoding: chunked\r\n"
        body = b""
        for data in draw(st.lists(st.binary(min_size=1, max_size=24), max_size=4)):
            extension = draw(st.sampled_from(["", "", ";a=b", ';q="x y"', ";flag"]))
            body += b"%x%s\r\n%s\r\n" % (len(data), extension.encode(), data)
        body += b"0\r\n" + "".join(f"{name}: {value}\r\n" for name, value in part("trailers")).encode() + b"\r\n"
    else:
        body = b""
    return head.encode("latin-1") + b"\r\n" + body


@dataclass
class ValidRequest:
    raw: bytes
    headers: list[tuple[str, str]]  # as the parser must report them
    answer: bytes                   # the echo app's answer


@st.composite
def valid_request(draw) -> ValidRequest:
    """A request a server must answer 200, HTTP/1.1 or HTTP/1.0 (keep-alive, Host optional),
    with an origin-form or absolute-form target."""
    name = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    path_query = draw(origin_form)
    authority = draw(st.sampled_from([None, "example.com", "[::1]:8080", "h:81"]))
    version = draw(st.sampled_from(["1.1", "1.0"]))
    fields = draw(st.lists(st.tuples(st.sampled_from(["User-Agent", "Accept", "X-Custom", "Cookie"]),
                                     visible.map(str.strip)), max_size=3))
    if version == "1.1" or draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), ("Host", "example.com"))
    if version == "1.0":
        fields.append(("Connection", "keep-alive"))
    content = draw(st.binary(max_size=40))
    if version == "1.1" and draw(st.booleans()):
        fields.append(("Transfer-Encoding", "chunked"))
        body = b"".join(b"%x\r\n%s\r\n" % (len(content[i:i + 7]), content[i:i + 7]) for i in range(0, len(content), 7))
        body += b"0\r\n" + b"".join(b"%s: %s\r\n" % pair for pair in draw(st.lists(st.sampled_from(
            [(b"X-Checksum", b"1"), (b"Server-Timing", b"a")]), max_size=2))) + b"\r\n"
    else:
        fields.append(("Content-Length", str(len(content))))
        body = content
    request_target = path_query if authority is None else f"http://{authority}{path_query}"
    head = f"{name} {request_target} HTTP/{version}\r\n" + "".join(f"{field}: {value}\r\n" for field, value in fields)
    headers = [(field.lower(), value) for field, value in fields]
    if authority is not None:  # RFC 9112 3.2.2: the target's authority is the Host, in place or added
        hosts = [index for index, (field, _) in enumerate(headers) if field == "host"]
        if hosts:
            headers[hosts[0]] = ("host", authority)
        else:
            headers.append(("host", authority))
    path_info = unquote_to_bytes(path_query.partition("?")[0])
    answer = name.encode() + b" " + path_info + b" " + content
    return ValidRequest(head.encode("latin-1") + b"\r\n" + body, headers, answer)


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` with a few random byte-level edits: replace, insert, delete, repeat a slice."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["replace", "insert", "delete", "repeat"]))
        if edit == "replace" and at < len(data):
            data[at] = draw(st.sampled_from([0, 9, 10, 13, 32, 58, 59, 127, 255]) | st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.sampled_from([b"\r\n", b"\n", b"\r", b" ", b":", b"0\r\n\r\n", b"\x00"])
                               | st.binary(max_size=3))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 4))]
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 12))]
    return bytes(data)


pipeline = st.lists(any_request(), min_size=1, max_size=3).map(b"".join)
anything = st.one_of(pipeline, pipeline.flatmap(mutated), st.binary(max_size=200))


@st.composite
def cut(draw, data: bytes) -> list[bytes]:
    """`data` split at random points, as TCP may deliver it."""
    points = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)], strict=True)]


# --- checking the answers ---------------------------------------------------------------------
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) [^\r\n]*\r\n")
FIELD_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ([^\r\n]*)\r\n")


def parse_answers(data: bytes) -> list[tuple[int, dict, bytes]]:
    """Strictly parse back-to-back responses (none to HEAD: the generators send no HEAD)."""
    answers = []
    while data:
        match = STATUS_LINE.match(data)
        assert match, f"not a status line: {data[:80]!r}"
        status, data = int(match[1]), data[match.end():]
        headers = {}
        while not data.startswith(b"\r\n"):
            match = FIELD_LINE.match(data)
            assert match, f"not a field line: {data[:80]!r}"
            headers[match[1].decode().lower()] = match[2].decode("latin-1")
            data = data[match.end():]
        data = data[2:]
        if status < 200:
            answers.append((status, headers, b""))
            continue
        if "content-length" in headers:
            length = int(headers["content-length"])
            assert len(data) >= length, "body shorter than its Content-Length"
            body, data = data[:length], data[length:]
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    assert data.startswith(b"\r\n"), "a response trailer section nobody asked for"
                    data = data[2:]
                    break
                body, data = body + data[:size], data[size:]
                assert data.startswith(b"\r\n")
                data = data[2:]
        else:
            assert headers.get("connection") == "close", "a body with no length on a kept connection"
            body, data = data, b""
        answers.append((status, headers, body))
    return answers


class ErrorRecords(logging.Handler):
    """Collects the records at ERROR and above while installed: a fuzz input must log none."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors():
    handler = ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def check_answers(answers: list[tuple[int, dict, bytes]], closed: bool) -> None:
    finals = [answer for answer in answers if answer[0] >= 200]
    for index, (status, headers, _) in enumerate(finals):
        assert status in ERROR_STATUSES | {200, 404, 405}, status
        if status >= 400 and status != 404:
            assert headers.get("connection") == "close" and index == len(finals) - 1, finals
    if finals and finals[-1][1].get("connection") == "close":
        assert closed, "Connection: close announced but the connection stays open"


# --- the parser alone -------------------------------------------------------------------------
LIMITS = dict(max_request_line=8190, max_header_size=65536, max_header_count=100, max_body_size=1 << 20)


def parse(pieces: list[bytes]) -> list:
    parser = RequestParser(**LIMITS)
    events = []
    for piece in pieces:
        for event in parser.feed(piece):
            if isinstance(event, UpgradeRest):  # fed back, as the connection does for plain HTTP
                events.extend(parser.feed(event.data))
            else:
                events.append(event)
    return events


@FUZZ
@given(anything.flatmap(cut))
def test_fuzz_parser_never_raises_and_errors_are_final(errors, pieces):
    errors.records.clear()
    events = parse(pieces)
    failures = [index for index, event in enumerate(events) if isinstance(event, ParseError)]
    if failures:
        assert failures == [len(events) - 1], events
        assert events[-1].status in ERROR_STATUSES, events[-1]
    in_request = False
    for event in events:  # heads, bodies and ends alternate properly
        if isinstance(event, RequestHead):
            assert not in_request
            in_request = True
        elif event is END_OF_REQUEST:
            assert in_request
            in_request = False
        elif type(event) is bytes:
            assert in_request
    assert not errors.records, errors.records


@FUZZ
@given(st.lists(valid_request(), min_size=1, max_size=4).flatmap(
    lambda requests: cut(b"".join(request.raw for request in requests)).map(lambda pieces: (requests, pieces))))
def test_fuzz_parser_reads_valid_pipelines_exactly(case):
    """Every request in order, with exactly the fields it was sent with (the Host from an
    absolute-form target standing in for the Host field)."""
    requests, pieces = case
    events = parse(pieces)
    assert [event for event in events if isinstance(event, ParseError)] == []
    assert [event.headers for event in events if isinstance(event, RequestHead)] == [
        request.headers for request in requests]
    assert sum(event is END_OF_REQUEST for event in events) == len(requests)


# --- the connection: parser, dispatch and framing over a recording transport -----------------
def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [environ["REQUEST_METHOD"].encode(), b" ", environ["PATH_INFO"].encode("latin-1"), b" ", body]


@pytest.fixture(scope="module")
def harness():
    harness = Harness(("/", echo), max_upload_size=1 << 20)
    yield harness
    harness.close()


def connect(harness: Harness) -> tuple[H1Connection, RecordingTransport]:
    connection = H1Connection(harness.server)
    transport = RecordingTransport(connection)
    connection.connection_made(transport)
    return connection, transport


def feed(harness: Harness, connection: H1Connection, data: bytes) -> None:
    connection.data_received(data)
    settle(harness.loop)


def finish(harness: Harness, connection: H1Connection, transport: RecordingTransport) -> None:
    """Let every timer of the connection expire, as the server's sweep would, much later."""
    for _ in range(3):
        if transport.closed or connection.handed_over:
            break
        connection.check_timeout(time.monotonic() + 3600)
        settle(harness.loop)
    assert transport.closed or connection.handed_over, connection.timer_kind
    harness.server.connection_closed(connection)


@FUZZ
@given(anything.flatmap(cut))
def test_fuzz_connection_answers_well_formed_or_closes(harness, errors, pieces):
    errors.records.clear()
    connection, transport = connect(harness)
    for piece in pieces:
        feed(harness, connection, piece)
    finish(harness, connection, transport)
    if not connection.handed_over:
        check_answers(parse_answers(bytes(transport.data)), transport.closed)
    assert not errors.records, errors.records


@FUZZ
@given(st.lists(valid_request(), min_size=1, max_size=4).flatmap(
    lambda requests: cut(b"".join(request.raw for request in requests) + PROBE).map(lambda pieces: (requests, pieces))))
def test_fuzz_connection_answers_valid_pipelines_and_then_a_clean_request(harness, errors, case):
    requests, pieces = case
    errors.records.clear()
    connection, transport = connect(harness)
    for piece in pieces:
        feed(harness, connection, piece)
    answers = [answer for answer in parse_answers(bytes(transport.data)) if answer[0] >= 200]
    assert [(status, body) for status, _, body in answers] == (
        [(200, request.answer) for request in requests] + [(200, b"GET /probe ")])
    assert not transport.closed
    finish(harness, connection, transport)
    assert not errors.records, errors.records


# --- a live server over real sockets ----------------------------------------------------------
@pytest.fixture(scope="module")
def live_server():
    server = ServerThread(threads=2, request_timeout=1, max_upload_size=1 << 20)
    server.mount("/", echo)
    with server:
        yield server


def talk(port: int, pieces: list[bytes], half_close: bool = True) -> tuple[bytes, bool]:
    """Send `pieces`, half-close (which the server takes as the client leaving: whatever is in
    flight may be aborted) unless told not to, and read until the server closes:
    (answers, closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server refused early and closed: what it said is still readable
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass  # a close with unread input: what arrived before it counts
        except socket.timeout:
            return data, False
    return data, True


@SOCKET_FUZZ
@given(anything.flatmap(cut))
def test_fuzz_live_server_answers_or_closes_and_keeps_serving(live_server, errors, pieces):
    errors.records.clear()
    data, closed = talk(live_server.port, pieces)
    assert closed, "the server neither answered nor closed within 10 s"
    check_answers(parse_answers(data), closed)
    probe, _ = talk(live_server.port, [PROBE.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")],
                    half_close=False)
    assert probe.startswith(b"HTTP/1.1 200 OK\r\n") and probe.endswith(b"GET /probe "), probe
    assert not errors.records, errors.records
