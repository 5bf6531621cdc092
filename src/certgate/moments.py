"""One rule for a moment without an offset: it is UTC. SQLite gives back naive times (the
store writes UTC), a user may type a time without one, and PostgreSQL gives aware times in
its session's time zone; every face shows and compares moments in UTC."""

from __future__ import annotations

import datetime as dt


def utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC, a naive one taken as UTC."""
    if moment.tzinfo is None:  # every time SQLite gives back
        return moment.replace(tzinfo=dt.UTC)
    if moment.tzinfo is dt.UTC:  # every time PostgreSQL gives back in a UTC session
        return moment
    return moment.astimezone(dt.UTC)
