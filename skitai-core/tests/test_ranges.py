"""Byte ranges as pure functions: Range parsing, If-Range, and the pieces of a 206 body."""
import io

import pytest

from skitai.exchange import FileSegment
from skitai.ranges import MAX_RANGES, UNSATISFIABLE, if_range_allows, parse_range, range_response

SIZE = 100


@pytest.mark.parametrize("header, expected", [
    ("bytes=0-9", [(0, 9)]),
    ("bytes=90-", [(90, 99)]),
    ("bytes=-10", [(90, 99)]),
    ("bytes=-1000", [(0, 99)]),                 # suffix longer than the file: all of it
    ("bytes=50-1000", [(50, 99)]),              # last past the end is clamped
    ("bytes=99-99", [(99, 99)]),
    ("BYTES=0-0", [(0, 0)]),                    # the unit is case-insensitive
    ("bytes= 0-1 , 5-6 ", [(0, 1), (5, 6)]),    # optional whitespace around list members
    ("bytes=0-1,,5-6", [(0, 1), (5, 6)]),       # empty list members are tolerated
    ("bytes=000-001", [(0, 1)]),
    ("bytes=200-300,0-4", [(0, 4)]),            # an unsatisfiable member is dropped
    ("bytes=0-" + "9" * 5000, [(0, 99)]),       # too many digits for int(): still past the end
    ("bytes=-" + "9" * 5000, [(0, 99)]),
])
def test_satisfiable_ranges(header, expected):
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", [
    "bytes=100-", "bytes=100-200", "bytes=-0", "bytes=100-,-0", "bytes=" + "9" * 5000 + "-"])
def test_unsatisfiable_ranges(header):
    assert parse_range(header, SIZE) == UNSATISFIABLE


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=-5", "bytes=0-0"])
def test_nothing_is_satisfiable_in_an_empty_file(header):
    assert parse_range(header, 0) == UNSATISFIABLE


@pytest.mark.parametrize("header", [
    None, "", "items=0-1", "bytes", "bytes=", "bytes=,", "bytes=-", "bytes=1", "bytes=a-b",
    "bytes=5-3", "bytes=0-1,5-3", "bytes=1-2-3", "bytes=+1-2", "bytes=0x1-2", "bytes=1.5-2",
    "bytes=\xb2-5",       # '²' is a digit to str.isdigit but not to int()
    "bytes=0-\u0665",     # ARABIC-INDIC DIGIT FIVE, same trap
])
def test_absent_or_malformed_ranges_are_ignored(header):
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header, expected", [
    ("bytes=0-10,5-20", [(0, 20)]),             # overlapping
    ("bytes=0-9,10-19", [(0, 19)]),             # adjacent
    ("bytes=50-59,0-9", [(0, 9), (50, 59)]),    # sorted
    ("bytes=0-9,-95", [(0, 99)]),               # a suffix reaching back over an earlier range
    ("bytes=0-0,0-0,0-0", [(0, 0)]),            # repeats are sent once
])
def test_ranges_are_coalesced(header, expected):
    assert parse_range(header, SIZE) == expected


def test_too_many_ranges_collapse_into_one_span():
    many = ",".join(f"{start}-{start}" for start in range(0, 2 * (MAX_RANGES + 1), 2))
    assert parse_range("bytes=" + many, SIZE) == [(0, 2 * MAX_RANGES)]
    just_enough = ",".join(f"{start}-{start}" for start in range(0, 2 * MAX_RANGES, 2))
    assert len(parse_range("bytes=" + just_enough, SIZE)) == MAX_RANGES


ETAG = '"5f-64"'
DATE = "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.mark.parametrize("if_range, allowed", [
    (None, True),
    ("", True),
    (ETAG, True),
    ('"other"', False),
    ("W/" + ETAG, False),            # If-Range needs a strong validator
    (DATE, True),
    ("Tue, 14 Nov 2023 22:13:21 GMT", False),
    ("not a date", False),
])
def test_if_range(if_range, allowed):
    assert if_range_allows(if_range, ETAG, DATE) is allowed


def test_if_range_against_a_weak_or_missing_etag_never_allows():
    assert not if_range_allows('W/"a"', 'W/"a"', DATE)
    assert not if_range_allows('"a"', None, DATE)
    assert not if_range_allows(DATE, ETAG, None)


def test_single_range_response_is_one_file_segment_at_the_base_offset():
    file = io.BytesIO(b"x" * 10)
    status, headers, pieces = range_response([(2, 5)], 10, "text/plain", file, base_offset=100)
    assert status == "206 Partial Content"
    assert headers == [("Content-Range", "bytes 2-5/10")]
    assert pieces == [FileSegment(file, 102, 4)]


def assemble(pieces, data):
    """The body bytes the pieces stand for, reading segments from `data`."""
    return b"".join(data[piece.offset:piece.offset + piece.count] if isinstance(piece, FileSegment)
                    else piece for piece in pieces)


def test_multiple_range_response_is_a_well_formed_multipart_body():
    data = bytes(range(100))
    status, headers, pieces = range_response([(0, 1), (10, 12)], 100, "application/pdf", io.BytesIO(data))
    (name, value), = headers
    assert status == "206 Partial Content" and name == "Content-Type"
    assert value.startswith("multipart/byteranges; boundary=")
    boundary = value.split("boundary=")[1].encode()
    assert assemble(pieces, data) == (
        b"--" + boundary + b"\r\nContent-Type: application/pdf\r\nContent-Range: bytes 0-1/100\r\n\r\n"
        + data[0:2] + b"\r\n--" + boundary
        + b"\r\nContent-Type: application/pdf\r\nContent-Range: bytes 10-12/100\r\n\r\n"
        + data[10:13] + b"\r\n--" + boundary + b"--\r\n")


def test_each_multipart_response_gets_a_fresh_boundary():
    first = range_response([(0, 0), (5, 5)], 10, None, io.BytesIO())[1]
    second = range_response([(0, 0), (5, 5)], 10, None, io.BytesIO())[1]
    assert first != second
