"""The request corpus in http1_cases/ (exact wire bytes and their expected parse or status),
run against the sans-IO parser and, for the invalid cases, against a live server."""
import base64
import re
import sys
from pathlib import Path

import pytest
from rawhttp import exchange

from skitai.http1.parser import END_OF_REQUEST, ParseError, RequestHead, RequestParser, UpgradeRest

sys.path.insert(0, str(Path(__file__).parent / "http1_cases"))
from corpus import load_cases  # noqa: E402

LIMITS = dict(max_request_line=8190, max_header_size=65536, max_header_count=100, max_body_size=1048576)
VALID = load_cases("valid")
INVALID = load_cases("invalid")


def feed(parser: RequestParser, data: bytes) -> list:
    """The parser's events; the bytes held after an Upgrade request are fed back, as the
    connection does once nobody took the upgrade."""
    events = []
    for event in parser.feed(data):
        if isinstance(event, UpgradeRest):
            events.extend(feed(parser, event.data))
        else:
            events.append(event)
    return events


def parse_all(raw: bytes, step: int | None = None) -> list:
    """Requests as dicts, plus a trailing ParseError if one was produced."""
    parser = RequestParser(**LIMITS)
    if step is not None and len(raw) > 65536:
        step *= 4096  # byte-by-byte through a megabyte proves nothing more than through its head
    pieces = [raw] if step is None else [raw[i:i + step] for i in range(0, len(raw), step)]
    events = [event for piece in pieces for event in feed(parser, piece)]
    requests, current = [], None
    for event in events:
        if isinstance(event, RequestHead):
            current = {"method": event.method, "target": event.target, "path": event.path,
                       "query": event.query, "version": event.version,
                       "headers": [list(pair) for pair in event.headers],
                       "keep_alive": event.keep_alive, "body": b""}
        elif type(event) is bytes:
            current["body"] += event
        elif event is END_OF_REQUEST:
            requests.append(current)
        elif isinstance(event, ParseError):
            requests.append(event)
    return requests


def expected_body(expectation: dict) -> bytes:
    if "body_b64" in expectation:
        return base64.b64decode(expectation["body_b64"])
    return expectation.get("body", "").encode("latin-1")


@pytest.mark.parametrize("step", [None, 1, 7])
@pytest.mark.parametrize("case", VALID, ids=lambda case: case.name)
def test_valid_requests_parse_exactly(case, step):
    requests = parse_all(case.raw, step)
    expected = case.expectation
    assert len(requests) == len(expected), requests
    for got, want in zip(requests, expected, strict=True):
        assert not isinstance(got, ParseError), got
        for key in ("method", "target", "path", "query", "version", "headers", "keep_alive"):
            if key in want:
                assert got[key] == want[key], key
        assert got["body"] == expected_body(want)


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.name)
def test_invalid_requests_are_refused_by_the_parser(case):
    requests = parse_all(case.raw)
    assert requests and isinstance(requests[-1], ParseError), requests
    assert requests[-1].status == case.expectation["status"], requests[-1]


@pytest.fixture(scope="module")
def live_server():
    from skitai.testing import ServerThread

    def app(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = ServerThread(max_upload_size=LIMITS["max_body_size"], request_timeout=3)
    server.mount("/", app)
    with server:
        yield server


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.name)
def test_invalid_requests_get_their_status_and_a_close_from_a_live_server(live_server, case):
    response = exchange(live_server.port, case.raw, timeout=10)
    statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", response)]
    assert statuses and statuses[-1] == case.expectation["status"], response[:300]
    assert b"Connection: close\r\n" in response
