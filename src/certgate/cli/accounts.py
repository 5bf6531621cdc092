"""``certgate user ...`` and ``certgate token ...``: accounts and API tokens."""

from __future__ import annotations

from pathlib import Path

import click

from certgate.cli.context import Options, command_options
from certgate.cli.output import report, report_table
from certgate.cli.secrets_input import Secret
from certgate.limits import ROW_ID_MAX
from certgate.schemas import CreatedToken, PasswordChanged, RemovedUser, Token, User, document
from certgate.service import auth, users


@click.group()
def user() -> None:
    """Accounts of the /appliance interface."""


@user.command("list")
@command_options
def user_list(options: Options, as_json: bool) -> None:
    views = options.call(users.list_users)
    report_table(
        as_json,
        User,
        views,
        ["Username", "Role", "Last login"],
        lambda v: [v.username, v.role, v.last_login_at or "never"],
    )


#: ``--role`` of an account and of a token.
role_option = click.option(
    "--role", type=click.Choice(users.ROLES), default="auditor", show_default=True
)
USER_PASSWORD = Secret("--password-file", "the password", "CERTGATE_USER_PASSWORD")


def _password(password_file: Path | None) -> str:
    secret = USER_PASSWORD.read(password_file, "Password", new=True)
    if secret is None:
        raise click.UsageError(f"give {USER_PASSWORD.given_by}, or run on a terminal")
    return secret.decode()


@user.command("add")
@click.argument("username")
@role_option
@USER_PASSWORD.option
@command_options
def user_add(
    options: Options, username: str, role: str, password_file: Path | None, as_json: bool
) -> None:
    """Add an administrator or a read-only auditor."""
    with options.appliance() as app:
        view = users.create_user(app, username, _password(password_file), role, options.actor)
    report(as_json, User, view, f"added {view.username} ({view.role})")


@user.command("remove")
@click.argument("username")
@command_options
def user_remove(options: Options, username: str, as_json: bool) -> None:
    options.call(users.delete_user, username, options.actor)
    report(as_json, RemovedUser, {"username": username}, f"removed {username}")


@user.command("password")
@click.argument("username")
@USER_PASSWORD.option
@command_options
def user_password(
    options: Options, username: str, password_file: Path | None, as_json: bool
) -> None:
    """Set a new password (ends that user's sessions)."""
    with options.appliance() as app:
        users.change_password(app, username, _password(password_file), options.actor)
    report(as_json, PasswordChanged, {"username": username}, f"password of {username} changed")


@click.group()
def token() -> None:
    """API tokens for automation (Authorization: Bearer ...)."""


@token.command("create")
@click.option("--name", required=True, help="What the token is for.")
@role_option
@command_options
def token_create(options: Options, name: str, role: str, as_json: bool) -> None:
    """Create a token; its value is printed once and never stored."""
    value, view = options.call(auth.create_token, name, role, created_by=options.actor)
    report(as_json, CreatedToken, {**document(Token, view), "token": value}, value)


@token.command("list")
@command_options
def token_list(options: Options, as_json: bool) -> None:
    views = options.call(auth.list_tokens)
    report_table(
        as_json,
        Token,
        views,
        ["ID", "Name", "Role", "Created", "Last used", "State"],
        lambda v: [
            v.id,
            v.name,
            v.role,
            v.created_at.strftime("%Y-%m-%d %H:%M"),
            v.last_used_at.strftime("%Y-%m-%d %H:%M") if v.last_used_at else "never",
            "revoked" if v.revoked else "active",
        ],
    )


@token.command("revoke")
@click.argument("token_id", type=click.IntRange(1, ROW_ID_MAX))
@command_options
def token_revoke(options: Options, token_id: int, as_json: bool) -> None:
    view = options.call(auth.revoke_token, token_id, options.actor)
    report(as_json, Token, view, f"revoked token {view.id} ({view.name})")
