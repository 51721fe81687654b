"""The rules of cachefs, an HTTP cache shared by all the app's requests (RFC 9111's "shared
cache"), as plain functions of headers and clocks: what may be stored, how long it stays fresh,
when it must be revalidated and how a 304 refreshes it. Sans-IO: no sockets, no files, so every
rule is tested by itself (tests/test_cachepolicy.py).

What is followed: `Cache-Control` (s-maxage before max-age, no-store, no-cache, private,
public, must-revalidate and proxy-revalidate; in the request: no-store, no-cache, max-age,
max-stale, min-fresh), `Expires` and `Date`, `Age`, `Vary` (one variant kept per URL; `Vary: *`
is never stored), the validators `ETag` and `Last-Modified` (a stale entry is asked for with
If-None-Match / If-Modified-Since, a 304 refreshes it) and the heuristic freshness of a
response with Last-Modified and no explicit lifetime (a tenth of its age, at most a day). A
stale entry is never served unless the call allows it (`max-stale`) and the response does not
forbid it (`must-revalidate`, `proxy-revalidate`, `s-maxage`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from enum import Enum

Headers = tuple[tuple[str, str], ...]

CACHEABLE_METHODS = frozenset(("GET", "HEAD"))
# statuses whose responses may be given a heuristic lifetime (RFC 9110 15.1)
HEURISTIC_STATUSES = frozenset((200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501))
HEURISTIC_FRACTION = 0.1
HEURISTIC_MAX = 86400.0
# a request carrying its own validators or a range is the caller's business: sent as it is
PASS_THROUGH_FIELDS = ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range",
                       "range")
# fields a 304 must not overwrite in the stored response (RFC 9111 3.2)
KEEP_ON_REFRESH = frozenset(("content-length", "content-encoding", "transfer-encoding", "content-type"))


@dataclass(frozen=True)
class Response:
    """An upstream's answer as the cache sees it: the raw body, not yet decoded."""

    status: int
    reason: str
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


@dataclass(frozen=True)
class Entry:
    """A stored response with what its freshness needs: when its request was sent and its
    response received (`time.time()` values) and the request's values of the fields its
    `Vary` names (None for a field the request did not have)."""

    response: Response
    request_time: float
    response_time: float
    vary: tuple[tuple[str, str | None], ...] = ()

    def size(self) -> int:
        """Bytes it costs in a tier, roughly: the body and the fields."""
        return len(self.response.body) + sum(len(name) + len(value) + 4 for name, value in self.response.headers) + 256


class Decision(Enum):
    FRESH = "fresh"            # serve it
    REVALIDATE = "revalidate"  # ask the upstream (conditionally, when the entry has a validator)


def header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """All the values of field `name`, joined by ", " (None when absent)."""
    name = name.lower()
    values = [value for key, value in headers if key.lower() == name]
    return ", ".join(values) if values else None


def cache_control(value: str | None) -> dict[str, str | None]:
    """`Cache-Control` as {directive: argument or None}, names lower-cased, quotes removed."""
    directives: dict[str, str | None] = {}
    for part in (value or "").split(","):
        name, equals, argument = part.strip().partition("=")
        if name:
            directives.setdefault(name.strip().lower(), argument.strip().strip('"') if equals else None)
    return directives


def seconds(directives: Mapping[str, str | None], name: str) -> float | None:
    """A delta-seconds directive's value; a malformed one counts as 0 (RFC 9111 4.2.1)."""
    if name not in directives:
        return None
    try:
        return max(0.0, float(int(directives[name] or "")))
    except ValueError:
        return 0.0


def http_date(value: str | None) -> float | None:
    """An HTTP date as a timestamp; None when absent or malformed."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def passes_through(method: str, request_headers: Iterable[tuple[str, str]]) -> bool:
    """True when the cache keeps out of the call: a method it does not cache, a conditional or
    range request of the caller's own, or `Cache-Control: no-store` in the request."""
    headers = list(request_headers)
    if method.upper() not in CACHEABLE_METHODS:
        return True
    if any(key.lower() in PASS_THROUGH_FIELDS for key, _ in headers):
        return True
    return "no-store" in cache_control(header(headers, "Cache-Control"))


def invalidates(method: str, status: int) -> bool:
    """An unsafe method answered with success or a redirect makes the stored target stale
    (RFC 9111 4.4)."""
    return method.upper() not in ("GET", "HEAD", "OPTIONS", "TRACE") and 200 <= status < 400


def freshness_lifetime(response: Response) -> float:
    """How long the response is fresh, in seconds (RFC 9111 4.2.1, for a shared cache)."""
    directives = cache_control(response.header("Cache-Control"))
    for name in ("s-maxage", "max-age"):
        value = seconds(directives, name)
        if value is not None:
            return value
    expires = response.header("Expires")
    if expires is not None:
        expires_at, date = http_date(expires), http_date(response.header("Date"))
        if expires_at is None or date is None:  # an invalid Expires means "already expired"
            return 0.0
        return max(0.0, expires_at - date)
    last_modified, date = http_date(response.header("Last-Modified")), http_date(response.header("Date"))
    if response.status in HEURISTIC_STATUSES and last_modified is not None and date is not None:
        return min(HEURISTIC_MAX, max(0.0, (date - last_modified) * HEURISTIC_FRACTION))
    return 0.0


def current_age(entry: Entry, now: float) -> float:
    """The entry's age at `now` (RFC 9111 4.2.3)."""
    response = entry.response
    date = http_date(response.header("Date"))
    apparent_age = max(0.0, entry.response_time - date) if date is not None else 0.0
    try:
        age_value = max(0.0, float(int(response.header("Age") or 0)))
    except ValueError:
        age_value = 0.0
    corrected_age_value = age_value + (entry.response_time - entry.request_time)
    return max(apparent_age, corrected_age_value) + (now - entry.response_time)


def has_validator(response: Response) -> bool:
    return response.header("ETag") is not None or response.header("Last-Modified") is not None


def storable(method: str, request_headers: Iterable[tuple[str, str]], response: Response) -> bool:
    """May the response be stored (RFC 9111 3, shared cache)? Not with no-store or private, not
    `Vary: *`, not partial; with credentials in the request only when public, s-maxage or
    must-revalidate allows it; and only when it can be of use: fresh for a while, or with a
    validator to revalidate it by."""
    headers = list(request_headers)
    if method.upper() not in CACHEABLE_METHODS or response.status in (206, 304) or response.status < 200:
        return False
    directives = cache_control(response.header("Cache-Control"))
    if "no-store" in directives or "private" in directives:
        return False
    if "no-store" in cache_control(header(headers, "Cache-Control")):
        return False
    vary = response.header("Vary")
    if vary is not None and "*" in (name.strip() for name in vary.split(",")):
        return False
    if header(headers, "Authorization") is not None and not (
            {"public", "s-maxage", "must-revalidate"} & directives.keys()):
        return False
    explicit = ({"public", "max-age", "s-maxage", "no-cache"} & directives.keys()
                or response.header("Expires") is not None)
    if not explicit and response.status not in HEURISTIC_STATUSES:
        return False
    return freshness_lifetime(response) > 0 or has_validator(response)


def vary_values(response: Response, request_headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str | None], ...]:
    """The request's values of the fields the response's `Vary` names, normalised."""
    headers = list(request_headers)
    names = [name.strip().lower() for name in (response.header("Vary") or "").split(",") if name.strip()]
    return tuple((name, _normalised(header(headers, name))) for name in names)


def matches(entry: Entry, request_headers: Iterable[tuple[str, str]]) -> bool:
    """Does the stored variant answer this request (its Vary fields have the same values)?"""
    headers = list(request_headers)
    return all(_normalised(header(headers, name)) == value for name, value in entry.vary)


def decide(entry: Entry, request_headers: Iterable[tuple[str, str]], now: float) -> Decision:
    """Serve the entry or revalidate it (RFC 9111 4.2, 5.2.1)."""
    response_directives = cache_control(entry.response.header("Cache-Control"))
    if "no-cache" in response_directives:
        return Decision.REVALIDATE
    request_directives = cache_control(header(list(request_headers), "Cache-Control"))
    if "no-cache" in request_directives or "no-cache" in (header(list(request_headers), "Pragma") or "").lower():
        return Decision.REVALIDATE
    lifetime = freshness_lifetime(entry.response)
    max_age = seconds(request_directives, "max-age")
    if max_age is not None:
        lifetime = min(lifetime, max_age)
    age = current_age(entry, now) + (seconds(request_directives, "min-fresh") or 0.0)
    if age < lifetime:
        return Decision.FRESH
    if "max-stale" in request_directives and not (
            {"must-revalidate", "proxy-revalidate", "s-maxage"} & response_directives.keys()):
        allowed = request_directives["max-stale"]
        if allowed is None or age - lifetime <= (seconds(request_directives, "max-stale") or 0.0):
            return Decision.FRESH
    return Decision.REVALIDATE


def conditional_headers(entry: Entry) -> dict[str, str]:
    """The validators to revalidate the entry with (empty: none, the request is a plain one)."""
    fields = {}
    etag = entry.response.header("ETag")
    if etag is not None:
        fields["If-None-Match"] = etag
    last_modified = entry.response.header("Last-Modified")
    if last_modified is not None:
        fields["If-Modified-Since"] = last_modified
    return fields


def refreshed(entry: Entry, not_modified: Response, request_time: float, response_time: float) -> Entry:
    """The entry after a 304: the 304's fields replace the stored ones of the same names (but
    not those describing the body), and its age starts again (RFC 9111 4.3.4)."""
    updated = {key.lower() for key, _ in not_modified.headers} - KEEP_ON_REFRESH
    headers = tuple((key, value) for key, value in entry.response.headers if key.lower() not in updated)
    headers += tuple((key, value) for key, value in not_modified.headers if key.lower() in updated)
    return replace(entry, response=replace(entry.response, headers=headers), request_time=request_time,
                   response_time=response_time)


def served(entry: Entry, now: float) -> Response:
    """The stored response as the cache hands it out: with its `Age`."""
    headers = tuple((key, value) for key, value in entry.response.headers if key.lower() != "age")
    return replace(entry.response, headers=(*headers, ("Age", str(int(current_age(entry, now))))))


def _normalised(value: str | None) -> str | None:
    return None if value is None else ",".join(part.strip() for part in value.split(","))
