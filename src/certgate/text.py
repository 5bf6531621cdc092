"""Names are text, not terminal commands: one rule for every name on every face.

A certificate subject such as ``esc\\x1b]0;PWNED\\x07\\x1b[2J`` became a friendly name that
``certgate cert list`` printed raw, retitling and clearing the administrator's terminal.
Control characters are: C0 and C1 controls and DEL, lone surrogates, the line and paragraph
separators, and the bidirectional embeddings, overrides, isolates and marks (which reorder
what a reader sees). Names people type (friendly names, token names) holding any of them are
refused (:func:`check_name`); names taken from a certificate or a file have each of them
replaced by its visible escape (:func:`name_from`); the CLI prints every text through
:func:`visible`, so no stored or derived text reaches a terminal raw, and the pages show every
text through it too (``web/pages/rendering.py``: a subject ``x\\u202egnp.exe`` read "xexe.png").
"""

from __future__ import annotations

import json
import re
from typing import Any

from certgate.errors import ValidationError

#: The control characters, as a regular expression character class (Python and Rust syntax
#: alike, so a JSON schema ``pattern`` can say the same; lone surrogates are added below).
CONTROL_CLASS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
#: A JSON schema pattern for a name: no control character.
NAME_PATTERN = f"^[^{CONTROL_CLASS}]*$"
_CONTROL = re.compile(f"[{CONTROL_CLASS}\ud800-\udfff]")
MAX_NAME_LENGTH = 200


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def visible(text: str, keep: str = "") -> str:
    """``text`` with each control character as its escape (``\\x1b``, ``\\u202e``), but
    those in ``keep`` (a page's line breaks and tabs)."""
    if not keep:
        return _CONTROL.sub(_escape, text)
    return _CONTROL.sub(
        lambda match: match.group() if match.group() in keep else _escape(match), text
    )


#: What json.dumps leaves raw in strings (it escapes C0 itself; its own line breaks stay).
_RAW_IN_JSON = re.compile(f"(?!\n)[{CONTROL_CLASS}\ud800-\udfff]")


def json_text(value: Any) -> str:
    """``value`` as indented JSON that a terminal shows as it is: every control character in
    a string as its JSON escape (``\\u009b``), which json.dumps leaves raw (C1, the
    bidirectional controls) when not asked for ASCII; it reads back the same."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _RAW_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def check_name(value: str, field: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """A name someone typed, stripped; refused when empty, too long, or holding a control
    character (a name is one line of text)."""
    name = value.strip()
    if not name:
        raise ValidationError(field, "is required")
    if len(name) > max_length:
        raise ValidationError(field, f"is longer than {max_length} characters")
    if has_control(name):
        raise ValidationError(
            field, "holds a control character (line break, tab, escape...): use plain text"
        )
    return name


def name_from(value: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """A name taken from a certificate or a file: control characters made visible, spaces
    collapsed, at most ``max_length`` characters."""
    return " ".join(visible(value).split())[:max_length]
