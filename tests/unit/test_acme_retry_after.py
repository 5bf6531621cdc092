"""A CA's Retry-After, as the renewal's next try honours it: seconds or an HTTP date, never
in the past, at most a week on; anything else is no answer."""

from __future__ import annotations

import datetime as dt

from certgate.service.acme_ca import RETRY_AFTER_MAX, retry_after
from certgate.service.acme_renewal import RATE_LIMITED_BACKOFF, backoff

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def test_seconds_and_dates() -> None:
    assert retry_after("120", NOW) == NOW + dt.timedelta(seconds=120)
    assert retry_after("Fri, 04 Dec 2026 13:30:00 GMT", NOW) == NOW + dt.timedelta(minutes=90)
    # A date with an offset (HTTP allows only GMT; some servers send one) comes out in UTC,
    # the store's zone: SQLite would keep 14:30 and drop the offset.
    offset = retry_after("Fri, 04 Dec 2026 14:30:00 +0100", NOW)
    assert offset == NOW + dt.timedelta(minutes=90) and offset is not None
    assert offset.utcoffset() == dt.timedelta(0)


def test_bounds_and_nonsense() -> None:
    assert retry_after("Fri, 04 Dec 2026 11:00:00 GMT", NOW) == NOW  # in the past: now
    assert retry_after("99999999999", NOW) == NOW + RETRY_AFTER_MAX
    for value in (None, "", "soon", "-5", "Fri, 04 Dec 2026 13:30:00"):
        assert retry_after(value, NOW) is None


def test_backoff_doubles_to_a_day_and_waits_hours_after_rate_limits() -> None:
    assert [backoff(n, False).total_seconds() / 60 for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff(50, False) == dt.timedelta(days=1)
    assert backoff(1, True) == RATE_LIMITED_BACKOFF
