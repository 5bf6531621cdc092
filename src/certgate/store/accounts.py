"""Queries for users, browser sessions, API tokens and failed logins.

These rows never affect what the listeners serve, so writing them does not bump the
revision that ``certgate serve`` watches (``store/revision.py``: they are not served tables;
a login must not rebuild the TLS contexts).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select

from certgate.store.models import ApiTokenRow, Base, LoginFailureRow, SessionRow, UserRow
from certgate.store.repository import Repository


def add_quietly(repository: Repository, row: Base) -> None:
    repository.session.add(row)
    repository.session.flush()


def delete_quietly(repository: Repository, row: Base) -> None:
    repository.session.delete(row)
    repository.session.flush()


def user_by_name(repository: Repository, username: str) -> UserRow | None:
    return repository.session.scalar(select(UserRow).where(UserRow.username == username))


def user_by_id(repository: Repository, user_id: int) -> UserRow | None:
    return repository.session.get(UserRow, user_id)


def all_users(repository: Repository) -> list[UserRow]:
    return list(repository.session.scalars(select(UserRow).order_by(UserRow.username)))


def count_admins(repository: Repository) -> int:
    """How many administrators there are, their rows locked until the transaction ends: on
    PostgreSQL two removals counted two administrators each and left none (SQLite's
    writers already take turns)."""
    query = select(UserRow.id).where(UserRow.role == "admin").with_for_update()
    return len(repository.session.scalars(query).all())


def session_by_hash(repository: Repository, token_hash: str) -> SessionRow | None:
    return repository.session.scalar(select(SessionRow).where(SessionRow.token_hash == token_hash))


def delete_sessions_of(repository: Repository, user_id: int) -> None:
    repository.session.execute(delete(SessionRow).where(SessionRow.user_id == user_id))


def delete_sessions_before(repository: Repository, moment: dt.datetime) -> None:
    repository.session.execute(delete(SessionRow).where(SessionRow.last_seen_at < moment))


def token_by_hash(repository: Repository, token_hash: str) -> ApiTokenRow | None:
    return repository.session.scalar(
        select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash)
    )


def token_by_id(repository: Repository, token_id: int) -> ApiTokenRow | None:
    return repository.session.get(ApiTokenRow, token_id)


def token_caller(name: str) -> str:
    """A token as a caller: the audit trail's actor, the ``created_by`` of the tokens it made."""
    return f"token:{name}"


def tokens_made_from(repository: Repository, username: str) -> list[ApiTokenRow]:
    """The tokens ``username`` created, those tokens created, and so on down the line (a
    token can make tokens), revoked or not. Tokens are known by name only (``created_by``
    is ``token:<name>``): what another token of the same name made is in the line too."""
    found: dict[int, ApiTokenRow] = {}
    makers = {username}
    while makers:
        query = select(ApiTokenRow).where(ApiTokenRow.created_by.in_(sorted(makers)))
        made = [row for row in repository.session.scalars(query) if row.id not in found]
        found.update((row.id, row) for row in made)
        makers = {token_caller(row.name) for row in made}
    return [found[token_id] for token_id in sorted(found)]


def all_tokens(repository: Repository) -> list[ApiTokenRow]:
    return list(repository.session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id)))


def login_failures_since(
    repository: Repository, keys: Sequence[str], moment: dt.datetime
) -> dict[str, list[dt.datetime]]:
    """When each of these keys failed to log in since ``moment``, oldest first."""
    query = (
        select(LoginFailureRow.key, LoginFailureRow.at)
        .where(LoginFailureRow.key.in_(list(keys)), LoginFailureRow.at >= moment)
        .order_by(LoginFailureRow.at)
    )
    found: dict[str, list[dt.datetime]] = {key: [] for key in keys}
    for key, at in repository.session.execute(query):
        found[key].append(at)
    return found


def lock_login_failures(repository: Repository) -> None:
    """Serialise the throttle's count-then-record: SQLite writers already are (BEGIN
    IMMEDIATE); on PostgreSQL, a transaction-scoped advisory lock."""
    if repository.session.get_bind().dialect.name == "postgresql":
        repository.session.execute(select(func.pg_advisory_xact_lock(_LOGIN_LOCK)))


_LOGIN_LOCK = 0x63657274  # "cert": the advisory lock's key, one for the whole throttle


def add_login_failures(repository: Repository, keys: Sequence[str], at: dt.datetime) -> None:
    repository.session.add_all(LoginFailureRow(key=key, at=at) for key in keys)


def delete_login_failures(repository: Repository, before: dt.datetime) -> None:
    """Forget every failure older than ``before`` (out of the throttle's window)."""
    repository.session.execute(delete(LoginFailureRow).where(LoginFailureRow.at < before))


def forget_login_failures(repository: Repository, user: str, client: str) -> None:
    """A successful login: forget the failures of ``user`` and, of ``client``'s, only those
    that were attempts on ``user`` (an attempt records both keys at the same moment).
    Forgetting all of ``client``'s let a guesser with an account of their own reset their
    network's count by logging in as themselves every four guesses."""
    theirs = select(LoginFailureRow.at).where(LoginFailureRow.key == user)
    repository.session.execute(
        delete(LoginFailureRow).where(LoginFailureRow.key == client, LoginFailureRow.at.in_(theirs))
    )
    repository.session.execute(delete(LoginFailureRow).where(LoginFailureRow.key == user))
