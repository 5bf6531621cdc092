"""The Create page's fields as options, said once for ``cert create`` and ``request create``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from certgate.fields import COMMON_NAME_HELP, SANS_HELP
from certgate.pki.keys import DEFAULT_KEY_SPEC, KeySpec

F = TypeVar("F", bound=Callable[..., Any])

#: The ``--key`` choices: the values of the Create page's Key dropdown.
KEY_TYPES = click.Choice([spec.value for spec in KeySpec])

#: The subject options: (option, parameter, help), in the guide's order.
SUBJECT_OPTIONS = (
    ("--country", "country", "Two-letter ISO 3166 country code."),
    ("--state", "state", "State/Province, the full name."),
    ("--city", "city", "City (Locality)."),
    ("--org", "organization", "Organization."),
    ("--ou", "organizational_unit", "Organizational Unit."),
)


def form_options(*, required: bool) -> Callable[[F], F]:
    """``--name``, ``--key``, ``--cn``, the subject options (passed as keyword arguments named
    as ``SubjectFields``'s) and ``--san``. ``required``: ``cert create`` needs ``--name`` and
    ``--cn``; where they are not required, an option not given is None (a renewal keeps the
    certificate's value; "" removes a subject field) and ``--key`` has no default."""
    options = [
        click.option(
            "--name", "friendly_name", required=required, help="Certificate Friendly Name."
        ),
        click.option(
            "--key",
            "key_spec",
            default=DEFAULT_KEY_SPEC.value if required else None,
            show_default=required,
            type=KEY_TYPES,
            help="Key type and size of the new key.",
        ),
        click.option(
            "--cn", "common_name", required=required, help=f"Name (Common Name). {COMMON_NAME_HELP}"
        ),
        *(
            click.option(flag, parameter, default="" if required else None, help=text)
            for flag, parameter, text in SUBJECT_OPTIONS
        ),
        click.option("--san", "sans", multiple=True, help=f"Repeatable. {SANS_HELP}"),
    ]

    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate
