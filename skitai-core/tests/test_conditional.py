"""Conditional requests (RFC 9110 13) and HTTP dates as pure functions."""
import time

import pytest

from skitai.httpdate import http_date, http_date_now, parse_http_date
from skitai.static.conditional import evaluate_preconditions

ETAG = '"17a-2a"'
MTIME = 1_700_000_000
SAME = http_date(MTIME)
OLDER = http_date(MTIME - 60)
NEWER = http_date(MTIME + 60)


def evaluate(method="GET", **headers):
    names = {name.replace("_", "-"): value for name, value in headers.items()}
    return evaluate_preconditions(method, names, ETAG, MTIME)


def test_no_preconditions_go_on():
    assert evaluate() is None


@pytest.mark.parametrize("value", [ETAG, "W/" + ETAG, f'"a", {ETAG}', f'"a",W/{ETAG} , "b"', "*"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_if_none_match_uses_weak_comparison_and_answers_304(method, value):
    assert evaluate(method, if_none_match=value) == 304


@pytest.mark.parametrize("value", ['"other"', '"17a-2a-x"', "17a-2a", ""])
def test_if_none_match_without_a_match_goes_on(value):
    assert evaluate(if_none_match=value) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_if_none_match_on_an_unsafe_method_is_412(method):
    assert evaluate(method, if_none_match=ETAG) == 412


@pytest.mark.parametrize("value", [ETAG, "*", f'"a", {ETAG}'])
def test_if_match_passes(value):
    assert evaluate(if_match=value) is None


@pytest.mark.parametrize("value", ['"other"', "W/" + ETAG, '"a,b"', ""])
def test_if_match_uses_strong_comparison_and_fails_with_412(value):
    assert evaluate(if_match=value) == 412


def test_an_entity_tag_may_contain_a_comma():
    assert evaluate_preconditions("GET", {"if-match": '"x", "a,b"'}, '"a,b"', MTIME) is None
    assert evaluate_preconditions("GET", {"if-none-match": '"a,b"'}, '"b"', MTIME) is None


@pytest.mark.parametrize("value, expected", [(OLDER, 412), (SAME, None), (NEWER, None), ("junk", None)])
def test_if_unmodified_since(value, expected):
    assert evaluate(if_unmodified_since=value) == expected


@pytest.mark.parametrize("value, expected", [(OLDER, None), (SAME, 304), (NEWER, 304), ("junk", None)])
def test_if_modified_since(value, expected):
    assert evaluate(if_modified_since=value) == expected


def test_if_modified_since_only_applies_to_get_and_head():
    assert evaluate("POST", if_modified_since=NEWER) is None
    assert evaluate("HEAD", if_modified_since=NEWER) == 304


def test_if_none_match_takes_precedence_over_if_modified_since():
    assert evaluate(if_none_match='"other"', if_modified_since=NEWER) is None
    assert evaluate(if_none_match=ETAG, if_modified_since=OLDER) == 304


def test_if_match_takes_precedence_over_if_unmodified_since():
    assert evaluate(if_match=ETAG, if_unmodified_since=OLDER) is None
    assert evaluate(if_match='"other"', if_unmodified_since=NEWER) == 412


def test_a_failed_if_match_wins_over_a_matching_if_none_match():
    assert evaluate(if_match='"other"', if_none_match=ETAG) == 412
    assert evaluate(if_unmodified_since=OLDER, if_modified_since=NEWER) == 412


@pytest.mark.parametrize("value", [
    "Tue, 14 Nov 2023 22:13:20 GMT",        # IMF-fixdate
    "Tuesday, 14-Nov-23 22:13:20 GMT",      # obsolete RFC 850
    "Tue Nov 14 22:13:20 2023",             # obsolete asctime, which names no zone
])
def test_the_three_http_date_formats_are_gmt(value, monkeypatch):
    monkeypatch.setenv("TZ", "XST+5")  # POSIX form: needs no tz database
    time.tzset()
    try:
        assert parse_http_date(value) == MTIME
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("value", ["", "junk", "Tue, 99 Nov 2023 22:13:20 GMT", "1700000000"])
def test_invalid_dates_parse_to_none(value):
    assert parse_http_date(value) is None


def test_http_date_formats():
    assert http_date(MTIME) == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert abs(parse_http_date(http_date_now()) - time.time()) < 2

