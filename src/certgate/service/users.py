"""Accounts of the /appliance interface: administrators and read-only auditors."""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from certgate.errors import ConflictError, NotFoundError, ValidationError
from certgate.service.appliance import Appliance
from certgate.store import accounts
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.models import UserRow
from certgate.store.repository import Repository

Role = Literal["admin", "auditor"]
ROLES: tuple[Role, ...] = ("admin", "auditor")
MIN_PASSWORD_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024
USERNAME_MAX = 64
#: What a username may hold (with ``USERNAME_MAX``): ASCII letters, digits and . _ @ -.
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]+$"
_USERNAME = re.compile(USERNAME_PATTERN)
_hasher = PasswordHasher()


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    role: Role
    created_at: dt.datetime
    last_login_at: dt.datetime | None


def user_view(row: UserRow) -> UserView:
    return UserView(row.id, row.username, check_role(row.role), row.created_at, row.last_login_at)


def check_role(role: str) -> Role:
    if role == "admin":
        return "admin"
    if role == "auditor":
        return "auditor"
    raise ValidationError("role", "choose admin or auditor")


def check_password(password: str) -> str:
    if not _is_unicode(password):
        raise ValidationError("password", "is not valid text (it holds a lone surrogate)")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValidationError("password", f"is longer than {PASSWORD_MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_password(password))


def _is_unicode(text: str) -> bool:
    """False for text no UTF-8 encoding takes (lone surrogates, as JSON's "\\ud800" or
    undecodable bytes in the environment give)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches, made with the same parameters as the real ones."""
    return _hasher.hash(secrets.token_urlsafe(32))


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` is the one hashed; with no hash (an unknown user), the same
    Argon2 work is done against a dummy hash, so the answer takes as long either way."""
    if not _is_unicode(password):
        password = password.encode("utf-8", "replace").decode()
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def list_users(app: Appliance) -> list[UserView]:
    with app.store.reading() as repository:
        return [user_view(row) for row in accounts.all_users(repository)]


def show_user(app: Appliance, username: str) -> UserView:
    with app.store.reading() as repository:
        return user_view(_existing(repository, username))


def create_user(
    app: Appliance, username: str, password: str, role: str, actor: Actor = APPLIANCE
) -> UserView:
    name = username.strip()
    if len(name) > USERNAME_MAX or not _USERNAME.match(name):
        raise ValidationError("username", f"use 1 to {USERNAME_MAX} letters, digits or . _ @ -")
    if name in (".", ".."):  # dot segments: a browser makes /users/../delete /delete
        raise ValidationError("username", f"{name!r} cannot name a page's URL")
    row = UserRow(username=name, password_hash=hash_password(password), role=check_role(role))
    # The same name added at once on another node meets the unique key at the commit: a
    # conflict too (Store.transaction, database.concurrent_change).
    with app.store.transaction(actor) as repository:
        if accounts.user_by_name(repository, name) is not None:
            raise ConflictError(f"the user {name!r} already exists")
        accounts.add_quietly(repository, row)
        repository.audit(AuditAction.USER_CREATE, name, f"role {row.role}")
        return user_view(row)


def delete_user(app: Appliance, username: str, actor: Actor = APPLIANCE) -> None:
    """Remove a user: their sessions end and the API tokens they created are revoked, with
    the tokens those made, down the line (each recorded), so a removed user keeps no way in
    (their tokens, then their tokens' tokens, kept working)."""
    with app.store.transaction(actor) as repository:
        row = _existing(repository, username)
        if row.role == "admin" and accounts.count_admins(repository) == 1:
            raise ConflictError("the last administrator cannot be removed")
        accounts.delete_sessions_of(repository, row.id)
        for token in accounts.tokens_made_from(repository, row.username):
            if token.revoked_at is not None:
                continue
            token.revoked_at = app.now()
            detail = f"id {token.id}, made by the removed user {row.username}"
            if token.created_by != row.username:
                detail = (
                    f"id {token.id}, made by {token.created_by} of the removed user {row.username}"
                )
            repository.audit(AuditAction.TOKEN_REVOKE, token.name, detail)
        accounts.delete_quietly(repository, row)
        repository.audit(AuditAction.USER_DELETE, row.username)


def change_password(app: Appliance, username: str, password: str, actor: Actor = APPLIANCE) -> None:
    """Set a new password; every session of that user ends."""
    password_hash = hash_password(password)
    with app.store.transaction(actor) as repository:
        row = _existing(repository, username)
        row.password_hash = password_hash
        accounts.delete_sessions_of(repository, row.id)
        repository.audit(AuditAction.USER_PASSWORD, row.username)


def change_own_password(
    app: Appliance, username: str, current: str, password: str, actor: Actor = APPLIANCE
) -> None:
    """Any user, auditors included, changes their own password by giving the current one
    (so that a session left open cannot be used to lock its owner out); every session of
    theirs ends."""
    with app.store.reading() as repository:
        current_hash = _existing(repository, username).password_hash
    if not password_matches(current_hash, current):
        raise ValidationError("current_password", "is not your current password")
    password_hash = hash_password(password)
    with app.store.transaction(actor) as repository:
        row = _existing(repository, username)
        if row.password_hash != current_hash:  # changed meanwhile: the check no longer holds
            raise ConflictError("the password was changed meanwhile; log in again")
        row.password_hash = password_hash
        accounts.delete_sessions_of(repository, row.id)
        repository.audit(AuditAction.USER_PASSWORD, row.username)


def find_user(repository: Repository, username: str) -> UserRow | None:
    """The user of that name; a name no user can have is not looked up (PostgreSQL refuses
    a NUL in a query: a login or a URL holding one answered 503 "store unavailable")."""
    name = username.strip()
    if len(name) > USERNAME_MAX or not _USERNAME.match(name):
        return None
    return accounts.user_by_name(repository, name)


def _existing(repository: Repository, username: str) -> UserRow:
    row = find_user(repository, username)
    if row is None:
        raise NotFoundError(f"no user named {username!r}")
    return row
