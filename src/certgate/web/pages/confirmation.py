"""The guard's confirmation step (``service/guard.py``) as the pages show it
(``_confirm_change.html``): what it found, and a form that sends the same change again with
``confirm`` set. Nothing is written before that post."""

from __future__ import annotations

from dataclasses import dataclass

from certgate.errors import UnconfirmedChangeError
from certgate.service import guard


@dataclass(frozen=True)
class Confirmation:
    """``action``: where Confirm posts; ``fields``: the hidden inputs that carry the change;
    ``cancel``: where Cancel leads."""

    concerns: tuple[guard.Concern, ...]
    action: str
    fields: list[tuple[str, str]]
    cancel: str
    guide: tuple[str, str] = (guard.GUIDE_CA_WARNING, guard.GUIDE_PRODUCTION_WARNING)


def confirmation_step(
    error: UnconfirmedChangeError, action: str, fields: list[tuple[str, str]], cancel: str
) -> Confirmation:
    concerns = tuple(c for c in error.concerns if isinstance(c, guard.Concern))
    return Confirmation(concerns, action, fields, cancel)
