"""HTTP dates, formatted once per second rather than once per response."""
from __future__ import annotations

import time
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime

_cached_second = -1
_cached_value = ""


def http_date_now() -> str:
    global _cached_second, _cached_value
    now = int(time.time())
    if now != _cached_second:
        _cached_value = formatdate(now, usegmt=True)
        _cached_second = now
    return _cached_value


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch, or None for anything that is not a valid HTTP date.

    All three HTTP date formats are GMT, but the asctime one carries no zone and the email parser
    returns it as a naive datetime, which `timestamp()` would read as local time.
    """
    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
