"""Who is calling: browser sessions (login, idle and absolute expiry, CSRF token), API
tokens (Bearer), throttling of failed logins, and what each role may do."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import math
import os
import pwd
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from certgate.errors import (
    AuthenticationError,
    ForbiddenError,
    NotFoundError,
    ThrottledError,
)
from certgate.service import users
from certgate.service.appliance import Appliance
from certgate.service.users import Role, check_role, password_matches
from certgate.store import accounts
from certgate.store.audit import APPLIANCE, Actor, AuditAction
from certgate.store.models import ApiTokenRow, SessionRow
from certgate.store.repository import Repository
from certgate.text import check_name

SESSION_IDLE = dt.timedelta(minutes=30)
SESSION_ABSOLUTE = dt.timedelta(hours=12)
TOKEN_PREFIX = "cgt_"
_TOUCH_EVERY = dt.timedelta(seconds=60)  # how stale last_seen/last_used may get


CLI_SOURCE = "cli"


@dataclass(frozen=True)
class Principal:
    """Who calls: a user (session), ``token:<name>`` (Bearer) or ``cli:<OS user>``; and
    from where (``source``: the client's address, or ``cli``)."""

    username: str
    role: Role
    via: Literal["session", "token", "cli"]
    source: str
    csrf_token: str | None = None

    @property
    def actor(self) -> Actor:
        """Who the audit trail names for what this principal does."""
        return Actor(self.username, self.source)

    def require_admin(self, what: str) -> None:
        """Auditors see everything but change nothing and export no private key."""
        if self.role != "admin":
            raise ForbiddenError(f"{what} needs an administrator; {self.username} is an auditor")


def cli_principal(os_user: str | None = None) -> Principal:
    """The CLI acts as the OS user who runs it (``cli:root``): whoever can read the data
    directory may do anything, as an administrator. The effective user id's name is asked
    of the system, not of the environment (``$USER`` is whatever the caller sets)."""
    if os_user is None:
        try:
            os_user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:  # a uid without a name (containers)
            os_user = f"uid {os.geteuid()}"
    return Principal(f"cli:{os_user}", "admin", "cli", CLI_SOURCE)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- throttling ------------------------------------------------------------------------------


def client_network(client: str) -> str:
    """The network a client address is counted for: its /24 (IPv4) or /64 (IPv6). One
    machine commonly holds many addresses of its /64 (privacy addresses) and an attacker's
    consecutive addresses share a /24, so counting per address let 20 addresses do what one
    may not."""
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


@dataclass(frozen=True)
class LoginKeys:
    """The two counters a password guess is made against."""

    user: str
    client: str

    @property
    def both(self) -> tuple[str, str]:
        return (self.user, self.client)


@dataclass(frozen=True)
class LoginThrottle:
    """Password guesses (logins, and the current password when changing one's own): at most
    ``limit`` failures per client network (/24 or /64, whatever the usernames) within
    ``window``, then that network is refused until its oldest failure is out of it; and once
    a username has ``account_limit`` failures from all networks together, every attempt on
    it waits ``slowdown`` seconds before its password is checked, but is checked.

    Why: a per-username lock let anyone who can reach the login page keep the administrator
    out (first with 5 guesses, then with 20 addresses of 5 each). Now a network only ever
    locks itself out, and many networks together only slow the account down: the
    administrator still gets in, a distributed guesser gets ``limit`` guesses per network
    and window, each ``slowdown`` seconds apart on its connection.

    The attempts are kept in the store, so that every worker process of ``certgate serve``
    (and a restart) counts the same ones: kept in each process, N workers would allow N
    times as many guesses. Each attempt is counted before its password is checked, in one
    serialised transaction, so that parallel guesses cannot all pass a count made before
    any of them failed; a successful login forgets that username's failures (and its network's
    only as far as they were guesses at that username).
    """

    limit: int = 5
    window: dt.timedelta = dt.timedelta(minutes=15)
    account_limit: int = 20
    slowdown: float = 3.0

    def keys(self, username: str, client: str) -> LoginKeys:
        """The counters an attempt is made against."""
        name = "".join(c for c in username.strip().lower() if c.isprintable())  # no NUL
        return LoginKeys(f"user:{name}"[:300], f"client:{client_network(client)}"[:300])

    def attempt(self, app: Appliance, keys: LoginKeys) -> float:
        """Count an attempt, or refuse it (ThrottledError) when its network is at its limit;
        returns how many seconds to wait before checking its password."""
        now = app.now()
        with app.store.transaction() as repository:
            accounts.lock_login_failures(repository)
            accounts.delete_login_failures(repository, before=now - self.window)
            failures = accounts.login_failures_since(repository, keys.both, now - self.window)
            from_client = failures[keys.client]
            if len(from_client) >= self.limit:
                wait = (self.window - (now - from_client[-self.limit])).total_seconds()
                minutes = int(wait) // 60 + 1
                raise ThrottledError(
                    f"too many failed logins: try again in {minutes} minute(s)",
                    max(math.ceil(wait), 1),
                )
            accounts.add_login_failures(repository, keys.both, now)
        return self.slowdown if len(failures[keys.user]) >= self.account_limit else 0.0

    def succeeded(self, repository: Repository, keys: LoginKeys) -> None:
        accounts.forget_login_failures(repository, keys.user, keys.client)


# --- sessions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    cookie_value: str
    principal: Principal


@dataclass(frozen=True)
class LoginAttempt:
    """A counted login attempt: its password is checked after ``delay`` seconds."""

    username: str
    client: str
    keys: LoginKeys
    delay: float


def begin_login(
    app: Appliance, username: str, client: str, throttle: LoginThrottle
) -> LoginAttempt:
    """Count the attempt (ThrottledError when its network is at its limit). The caller waits
    ``delay`` seconds without holding a thread (the pages: ``anyio.sleep``), then calls
    :func:`finish_login`."""
    keys = throttle.keys(username, client)
    return LoginAttempt(username, client, keys, throttle.attempt(app, keys))


def login(
    app: Appliance, username: str, password: str, client: str, throttle: LoginThrottle
) -> NewSession:
    """Check the password (throttled) and open a session, waiting in this thread."""
    attempt = begin_login(app, username, client, throttle)
    time.sleep(attempt.delay)
    return finish_login(app, attempt, password, throttle)


def finish_login(
    app: Appliance,
    attempt: LoginAttempt,
    password: str,
    throttle: LoginThrottle,
    held: str | None = None,
) -> NewSession:
    """Check the password of a counted attempt and open a session, ending the one the
    browser held (``held``, its cookie: a login from a form opened before another tab
    logged in left that session open beside the new one). An unknown username costs the
    same Argon2 verification as a known one (4 ms against 139 ms told which usernames
    exist)."""
    username, client = attempt.username.strip(), attempt.client
    with app.store.reading() as repository:
        user = users.find_user(repository, username)
        known = password_matches(user.password_hash if user is not None else None, password)
    if not known:  # the attempt stays counted
        _record_failed_login(app, user.username if user is not None else None, client)
        raise AuthenticationError("wrong username or password")
    with app.store.transaction(Actor(username, client)) as repository:
        user = users.find_user(repository, username)
        if user is None:  # removed in the meantime
            raise AuthenticationError("wrong username or password")
        throttle.succeeded(repository, attempt.keys)
        now = app.now()
        accounts.delete_sessions_before(repository, now - SESSION_IDLE)
        if held and (replaced := accounts.session_by_hash(repository, _digest(held))):
            accounts.delete_quietly(repository, replaced)
        cookie_value = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        session = SessionRow(
            token_hash=_digest(cookie_value),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
        )
        user.last_login_at = now
        accounts.add_quietly(repository, session)
        repository.audit(AuditAction.LOGIN, user.username)
        return NewSession(
            cookie_value,
            Principal(user.username, check_role(user.role), "session", client, csrf),
        )


def change_own_password(
    app: Appliance,
    principal: Principal,
    current: str,
    password: str,
    throttle: LoginThrottle,
    pause: Callable[[float], None] = time.sleep,
) -> None:
    """``users.change_own_password``, its current-password check counted as a login attempt
    (same counters): an open session must not allow unthrottled guessing (30 guesses took
    3.6 s). A success forgets the failures, as a login does. Faces on an event loop call
    the two halves and wait between them without holding a thread."""
    pause(begin_password_change(app, principal, password, throttle))
    finish_password_change(app, principal, current, password, throttle)


def begin_password_change(
    app: Appliance, principal: Principal, password: str, throttle: LoginThrottle
) -> float:
    """Count the attempt (ThrottledError at the limit); returns how long to wait first."""
    users.check_password(password)  # a refused new password is no guess at the current one
    return throttle.attempt(app, throttle.keys(principal.username, principal.source))


def finish_password_change(
    app: Appliance, principal: Principal, current: str, password: str, throttle: LoginThrottle
) -> None:
    """Check the current password of a counted attempt and change it."""
    users.change_own_password(app, principal.username, current, password, principal.actor)
    with app.store.transaction() as repository:
        throttle.succeeded(repository, throttle.keys(principal.username, principal.source))


def _record_failed_login(app: Appliance, username: str | None, client: str) -> None:
    """A failed login names the account only if it exists: what was typed as a username
    may be a password typed in the wrong field."""
    with app.store.transaction(Actor(username or "unknown user", client)) as repository:
        repository.audit(AuditAction.LOGIN_FAILED, username or "unknown user")


def resolve_session(app: Appliance, cookie_value: str, source: str) -> Principal | None:
    """The session's user, or None if unknown or expired (idle or absolute).

    A read transaction answers most requests; a write happens only to end an expired
    session or to record activity at most once a minute, so pages never queue behind
    a long import for the database's write lock.
    """
    now = app.now()
    token_hash = _digest(cookie_value)
    with app.store.reading() as repository:
        session = accounts.session_by_hash(repository, token_hash)
        if session is None:
            return None
        user = accounts.user_by_id(repository, session.user_id)
        last_seen, created = session.last_seen_at, session.created_at
    expired = now - last_seen > SESSION_IDLE or now - created > SESSION_ABSOLUTE
    if expired or user is None:
        _write_session(app, token_hash, None)
        return None
    if now - last_seen > _TOUCH_EVERY:
        _write_session(app, token_hash, now)
    return Principal(user.username, check_role(user.role), "session", source, session.csrf_token)


def _write_session(app: Appliance, token_hash: str, seen: dt.datetime | None) -> None:
    """Record activity at ``seen``, or end the session when ``seen`` is None; skipped while
    another writer holds the store (the next request records it)."""

    def write(repository: Repository) -> None:
        session = accounts.session_by_hash(repository, token_hash)
        if session is None:
            return
        if seen is None:
            accounts.delete_quietly(repository, session)
        else:
            session.last_seen_at = seen

    app.store.touch(write)


def logout(app: Appliance, cookie_value: str, source: str) -> None:
    with app.store.transaction() as repository:
        session = accounts.session_by_hash(repository, _digest(cookie_value))
        if session is not None:
            user = accounts.user_by_id(repository, session.user_id)
            accounts.delete_quietly(repository, session)
            if user is not None:
                repository.actor = Actor(user.username, source)
                repository.audit(AuditAction.LOGOUT, user.username)


def csrf_matches(principal: Principal, presented: str | None) -> bool:
    if principal.via != "session":
        return True  # Bearer tokens are not sent by browsers on their own
    return secret_matches(presented, principal.csrf_token)


def secret_matches(presented: str | None, expected: str | None) -> bool:
    """In constant time; compared as UTF-8 (``hmac.compare_digest`` refuses a str that is
    not ASCII: a form or header holding "é" was a 500)."""
    if not (presented and expected):
        return False
    return hmac.compare_digest(_utf8(presented), _utf8(expected))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")  # "?" for a lone surrogate: no token holds one


# --- API tokens ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    role: Role
    created_by: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked: bool


def _token_view(row: ApiTokenRow) -> TokenView:
    return TokenView(
        row.id,
        row.name,
        check_role(row.role),
        row.created_by,
        row.created_at,
        row.last_used_at,
        row.revoked_at is not None,
    )


def create_token(
    app: Appliance, name: str, role: str, created_by: Actor = APPLIANCE
) -> tuple[str, TokenView]:
    """A new token; its value is returned once and only its hash is kept."""
    label = check_name(name, "name", max_length=100)
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        name=label, token_hash=_digest(value), role=check_role(role), created_by=created_by.name
    )
    with app.store.transaction(created_by) as repository:
        accounts.add_quietly(repository, row)
        repository.audit(AuditAction.TOKEN_CREATE, label, f"role {row.role}")
        return value, _token_view(row)


def list_tokens(app: Appliance) -> list[TokenView]:
    with app.store.reading() as repository:
        return [_token_view(row) for row in accounts.all_tokens(repository)]


def show_token(app: Appliance, token_id: int) -> TokenView:
    with app.store.reading() as repository:
        return _token_view(_existing_token(repository, token_id))


def _existing_token(repository: Repository, token_id: int) -> ApiTokenRow:
    row = accounts.token_by_id(repository, token_id)
    if row is None:
        raise NotFoundError(f"no API token with id {token_id}")
    return row


def revoke_token(app: Appliance, token_id: int, actor: Actor = APPLIANCE) -> TokenView:
    with app.store.transaction(actor) as repository:
        row = _existing_token(repository, token_id)
        if row.revoked_at is None:
            row.revoked_at = app.now()
            repository.audit(AuditAction.TOKEN_REVOKE, row.name, f"id {row.id}")
        return _token_view(row)


def resolve_token(app: Appliance, value: str, source: str) -> Principal | None:
    """The token's principal, or None if unknown or revoked.

    A read: unknown tokens never write, and when the token was last used is recorded at
    most once a minute and only if no other writer holds the store (a Bearer request
    behind a long import must answer at once, not after the database's 30 s timeout).
    """
    if not value.startswith(TOKEN_PREFIX):
        return None
    now = app.now()
    token_hash = _digest(value)
    with app.store.reading() as repository:
        row = accounts.token_by_hash(repository, token_hash)
        if row is None or row.revoked_at is not None:
            return None
        principal = Principal(
            accounts.token_caller(row.name), check_role(row.role), "token", source
        )
        stale = row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY
    if stale:

        def record(repository: Repository) -> None:
            current = accounts.token_by_hash(repository, token_hash)
            if current is not None:
                current.last_used_at = now

        app.store.touch(record)
    return principal
