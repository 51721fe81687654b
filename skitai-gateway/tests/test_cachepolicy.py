"""cachefs's rules without sockets: what is stored, how long it is fresh, when it is revalidated
and how a 304 refreshes it (RFC 9111, as a shared cache)."""
from email.utils import formatdate

import pytest

from skitai_gateway import cachepolicy as policy
from skitai_gateway.cachepolicy import Decision, Entry, Response

NOW = 1_800_000_000.0


def response(*headers, status=200, date=NOW):
    fields = (("Date", formatdate(date, usegmt=True)), *headers) if date is not None else headers
    return Response(status, "OK", tuple(fields), b"{}")


def entry(*headers, status=200, stored=NOW, vary=()):
    return Entry(response(*headers, status=status, date=stored), stored, stored, vary)


def decide(stored_entry, seconds_later, *request_headers):
    return policy.decide(stored_entry, request_headers, NOW + seconds_later)


def test_cache_control_directives():
    assert policy.cache_control('max-age=60, Public, no-cache="Set-Cookie", s-maxage = 5') == {
        "max-age": "60", "public": None, "no-cache": "Set-Cookie", "s-maxage": "5"}
    assert policy.cache_control(None) == {}


def test_max_age_is_fresh_until_it_passes():
    stored = entry(("Cache-Control", "max-age=60"))
    assert decide(stored, 59) is Decision.FRESH
    assert decide(stored, 60) is Decision.REVALIDATE


def test_s_maxage_wins_over_max_age_in_a_shared_cache():
    stored = entry(("Cache-Control", "max-age=600, s-maxage=10"))
    assert policy.freshness_lifetime(stored.response) == 10
    assert decide(stored, 11) is Decision.REVALIDATE


def test_expires_counts_from_date():
    stored = entry(("Expires", formatdate(NOW + 30, usegmt=True)))
    assert policy.freshness_lifetime(stored.response) == 30
    assert decide(stored, 29) is Decision.FRESH and decide(stored, 31) is Decision.REVALIDATE


def test_an_invalid_expires_is_already_expired():
    assert policy.freshness_lifetime(response(("Expires", "0"))) == 0


def test_max_age_wins_over_expires():
    stored = entry(("Cache-Control", "max-age=5"), ("Expires", formatdate(NOW + 3600, usegmt=True)))
    assert policy.freshness_lifetime(stored.response) == 5


def test_age_from_the_upstream_counts():
    stored = entry(("Cache-Control", "max-age=60"), ("Age", "50"))
    assert decide(stored, 5) is Decision.FRESH
    assert decide(stored, 11) is Decision.REVALIDATE
    assert policy.served(stored, NOW + 5).header("Age") == "55"


def test_heuristic_freshness_from_last_modified():
    modified = formatdate(NOW - 1000, usegmt=True)
    assert policy.freshness_lifetime(response(("Last-Modified", modified))) == 100
    assert policy.freshness_lifetime(response(("Last-Modified", modified), status=201)) == 0
    assert policy.storable("GET", (), response(("Last-Modified", modified)))


def test_no_cache_in_the_response_always_revalidates():
    stored = entry(("Cache-Control", "max-age=60, no-cache"), ("ETag", '"v1"'))
    assert decide(stored, 0) is Decision.REVALIDATE
    assert policy.storable("GET", (), stored.response)


@pytest.mark.parametrize("request_field", [("Cache-Control", "no-cache"), ("Pragma", "no-cache"),
                                           ("Cache-Control", "max-age=0")])
def test_the_call_can_ask_for_revalidation(request_field):
    stored = entry(("Cache-Control", "max-age=60"))
    assert decide(stored, 1, request_field) is Decision.REVALIDATE


def test_min_fresh():
    stored = entry(("Cache-Control", "max-age=60"))
    assert decide(stored, 30, ("Cache-Control", "min-fresh=20")) is Decision.FRESH
    assert decide(stored, 30, ("Cache-Control", "min-fresh=40")) is Decision.REVALIDATE


def test_max_stale_serves_stale_unless_the_upstream_forbids():
    assert decide(entry(("Cache-Control", "max-age=10")), 30, ("Cache-Control", "max-stale=60")) is Decision.FRESH
    assert decide(entry(("Cache-Control", "max-age=10")), 30, ("Cache-Control", "max-stale=5")) is Decision.REVALIDATE
    assert decide(entry(("Cache-Control", "max-age=10")), 900, ("Cache-Control", "max-stale")) is Decision.FRESH
    for forbidding in ("max-age=10, must-revalidate", "max-age=10, proxy-revalidate", "s-maxage=10"):
        stored = entry(("Cache-Control", forbidding))
        assert decide(stored, 30, ("Cache-Control", "max-stale=60")) is Decision.REVALIDATE


@pytest.mark.parametrize("cache_control", ["no-store", "private", "max-age=60, private", "max-age=60, no-store"])
def test_not_stored(cache_control):
    assert not policy.storable("GET", (), response(("Cache-Control", cache_control), ("ETag", '"x"')))


def test_what_is_never_stored():
    fresh = ("Cache-Control", "max-age=60")
    assert not policy.storable("POST", (), response(fresh))
    assert not policy.storable("GET", (("Cache-Control", "no-store"),), response(fresh))
    assert not policy.storable("GET", (), response(fresh, ("Vary", "Accept, *")))
    assert not policy.storable("GET", (), response(fresh, status=206))
    assert not policy.storable("GET", (), response())  # no lifetime, no validator
    assert not policy.storable("GET", (), response(("ETag", '"x"'), status=201))  # not heuristically cacheable
    assert policy.storable("GET", (), response(fresh, status=201))
    assert policy.storable("HEAD", (), response(fresh))


def test_credentials_need_the_upstreams_permission():
    authorized = (("Authorization", "Basic dTpw"),)
    assert not policy.storable("GET", authorized, response(("Cache-Control", "max-age=60")))
    for allowing in ("max-age=60, public", "s-maxage=60", "max-age=60, must-revalidate"):
        assert policy.storable("GET", authorized, response(("Cache-Control", allowing)))


def test_calls_the_cache_keeps_out_of():
    assert policy.passes_through("POST", ())
    assert policy.passes_through("GET", (("If-None-Match", '"a"'),))
    assert policy.passes_through("GET", (("Range", "bytes=0-1"),))
    assert policy.passes_through("GET", (("Cache-Control", "no-store"),))
    assert not policy.passes_through("get", (("Accept", "application/json"),))


def test_unsafe_methods_invalidate_on_success_only():
    assert policy.invalidates("POST", 201) and policy.invalidates("DELETE", 204) and policy.invalidates("PUT", 303)
    assert not policy.invalidates("POST", 500) and not policy.invalidates("GET", 200)


def test_vary_selects_the_variant():
    stored_response = response(("Cache-Control", "max-age=60"), ("Vary", "Accept, Accept-Language"))
    vary = policy.vary_values(stored_response, (("accept", "text/html"),))
    assert vary == (("accept", "text/html"), ("accept-language", None))
    stored = Entry(stored_response, NOW, NOW, vary)
    assert policy.matches(stored, (("Accept", "text/html"),))
    assert not policy.matches(stored, (("Accept", "application/json"),))
    assert not policy.matches(stored, (("Accept", "text/html"), ("Accept-Language", "ko")))


def test_validators_and_a_304_refresh():
    stored = entry(("Cache-Control", "max-age=10"), ("ETag", '"v1"'), ("Content-Type", "application/json"),
                   ("Last-Modified", formatdate(NOW - 100, usegmt=True)), ("X-Old", "1"))
    assert policy.conditional_headers(stored) == {
        "If-None-Match": '"v1"', "If-Modified-Since": formatdate(NOW - 100, usegmt=True)}
    later = NOW + 20
    assert decide(stored, 20) is Decision.REVALIDATE
    not_modified = Response(304, "Not Modified", (("Date", formatdate(later, usegmt=True)),
                                                  ("Cache-Control", "max-age=30"), ("Content-Type", "text/plain"),
                                                  ("X-Old", "2")), b"")
    renewed = policy.refreshed(stored, not_modified, later, later)
    assert renewed.response.body == b"{}" and renewed.response.status == 200
    assert renewed.response.header("Cache-Control") == "max-age=30" and renewed.response.header("X-Old") == "2"
    assert renewed.response.header("Content-Type") == "application/json"  # the body's own fields stay
    assert renewed.response.header("ETag") == '"v1"'
    assert policy.decide(renewed, (), later + 29) is Decision.FRESH
    assert policy.decide(renewed, (), later + 31) is Decision.REVALIDATE


def test_no_validator_means_a_plain_request():
    assert policy.conditional_headers(entry(("Cache-Control", "max-age=1"))) == {}
