"""Reading the audit trail: the Audit Log page, ``certgate audit list`` and GET /api/v1/audit
show the same events in the same JSON document."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from certgate.errors import ValidationError
from certgate.moments import utc
from certgate.service.appliance import Appliance
from certgate.store import audit
from certgate.store.audit import APPLIANCE, KEY_USES, Actor, AuditAction, AuditFilter
from certgate.store.models import AuditEventRow

__all__ = [
    "ACTION_FILTERS",
    "APPLIANCE",
    "DEFAULT_LIMIT",
    "KEY_USES",
    "MAX_LIMIT",
    "Actor",
    "AuditAction",
    "AuditEvent",
    "AuditFilter",
    "AuditPage",
    "list_events",
    "parse_time",
    "wanted_events",
]

DEFAULT_LIMIT = 50
#: What the action filter accepts: each family ("key." for every "key.*"), then each action.
ACTION_FILTERS: tuple[str, ...] = tuple(
    sorted({action.split(".")[0] + "." for action in AuditAction if "." in action})
) + tuple(str(action) for action in AuditAction)
MAX_LIMIT = 1000


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: dt.datetime
    actor: str
    source: str
    action: str
    target: str
    detail: str


@dataclass(frozen=True)
class AuditPage:
    """Events newest first; ``older`` is the ``before`` that continues the list (None at
    the oldest event)."""

    events: list[AuditEvent]
    older: int | None


def list_events(app: Appliance, wanted: AuditFilter, limit: int = DEFAULT_LIMIT) -> AuditPage:
    """The newest ``limit`` events that ``wanted`` matches."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", f"must be between 1 and {MAX_LIMIT}")
    if wanted.action and wanted.action not in ACTION_FILTERS:
        choices = ", ".join(ACTION_FILTERS)
        raise ValidationError("action", f"unknown action {wanted.action!r}; one of {choices}")
    with app.store.reading() as repository:
        rows = audit.events(repository.session, wanted, limit + 1)
    events = [_event(row) for row in rows[:limit]]
    return AuditPage(events, events[-1].id if len(rows) > limit else None)


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(row.id, row.at, row.actor, row.source, row.action, row.target, row.detail)


def wanted_events(
    now: dt.datetime,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | None = None,
    until: str | None = None,
    before: int | None = None,
) -> AuditFilter:
    """The filter as every face takes it: text fields, times as :func:`parse_time` reads
    them; an empty field (or ``before`` 0) is no filter."""
    return AuditFilter(
        actor=_text(actor, "actor"),
        action=_text(action, "action"),
        target=_text(target, "target"),
        since=parse_time(since, "since", now) if since else None,
        until=parse_time(until, "until", now) if until else None,
        before=before or None,
    )


def _text(value: str | None, field: str) -> str | None:
    """Filter text is printable text: control characters and lone surrogates (which no
    event holds, and which a database may refuse) are a mistake to name, not a query."""
    if not value:
        return None
    if not value.isprintable() or any("\ud800" <= c <= "\udfff" for c in value):
        raise ValidationError(field, "must not contain control characters")
    return value


_RELATIVE = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, field: str, now: dt.datetime) -> dt.datetime:
    """A moment as a user gives it: ISO 8601 (a date, or a date and time; UTC unless it
    says otherwise), or a time ago such as ``30m``, ``12h``, ``7d``, ``2w``."""
    try:
        if match := _RELATIVE.match(text):
            return now - dt.timedelta(**{_UNITS[match[2]]: int(match[1])})
        moment = dt.datetime.fromisoformat(text.strip())
        return utc(moment)
    except (ValueError, OverflowError):
        shown = text[:40].encode("unicode_escape").decode("ascii")
        raise ValidationError(
            field, f"'{shown}' is not a time: give e.g. 2026-12-04, 2026-12-04T19:30 or 12h"
        ) from None
