"""Users, sessions and API tokens, on both store backends."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher

from certgate.errors import ConflictError, NotFoundError, ValidationError
from certgate.service import auth, users
from certgate.service.appliance import Appliance
from certgate.service.audit import Actor
from certgate.service.setup import initialise
from certgate.store.models import UserRow
from tests.integration.conftest import Certgate
from tests.support.pglocks import behind_uncommitted
from tests.support.terminal import on_a_terminal

PASSWORD = "correct horse battery"


def test_init_made_one_administrator(appliance: Appliance) -> None:
    [admin] = users.list_users(appliance)
    assert (admin.username, admin.role) == ("admin", "admin")


def test_passwords_are_stored_only_as_argon2_hashes(appliance: Appliance) -> None:
    users.create_user(appliance, "alice", PASSWORD, "auditor")
    with appliance.store.reading() as repository:
        stored = repository.session.query(UserRow).filter_by(username="alice").one()
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash


def test_user_rules(appliance: Appliance) -> None:
    with pytest.raises(ValidationError, match="at least 10"):
        users.create_user(appliance, "bob", "short", "admin")
    with pytest.raises(ValidationError, match="admin or auditor"):
        users.create_user(appliance, "bob", PASSWORD, "root")
    users.create_user(appliance, "bob", PASSWORD, "auditor")
    with pytest.raises(ConflictError):
        users.create_user(appliance, "bob", PASSWORD, "auditor")
    with pytest.raises(ConflictError, match="last administrator"):
        users.delete_user(appliance, "admin")


def test_two_administrators_removed_at_once_leave_one(tmp_path: Path, postgresql_url: str) -> None:
    """PostgreSQL: bob's removal (another node's, not committed yet) while admin is removed
    here. The removal waits for the other and then refuses: it must not count two
    administrators from before the other commits and leave none."""
    initialise(tmp_path / "data", postgresql_url)
    app = Appliance.open(tmp_path / "data", postgresql_url)
    try:
        users.create_user(app, "bob", PASSWORD, "admin")
        removal = behind_uncommitted(
            postgresql_url,
            "DELETE FROM users WHERE username = 'bob'",
            lambda: users.delete_user(app, "admin"),
        )
        assert isinstance(removal, ConflictError), removal
        assert [(user.username, user.role) for user in users.list_users(app)] == [
            ("admin", "admin")
        ]
    finally:
        app.close()


def test_a_user_added_twice_at_once_is_a_conflict(tmp_path: Path, postgresql_url: str) -> None:
    """PostgreSQL: carol added here while another node's addition of carol is not committed
    yet: a conflict (409), not the unique key's IntegrityError (a 500)."""
    initialise(tmp_path / "data", postgresql_url)
    app = Appliance.open(tmp_path / "data", postgresql_url)
    try:
        added = behind_uncommitted(
            postgresql_url,
            "INSERT INTO users (username, password_hash, role, created_at) "
            "VALUES ('carol', 'elsewhere', 'auditor', now())",
            lambda: users.create_user(app, "carol", PASSWORD, "admin"),
        )
        assert isinstance(added, ConflictError), added
        assert {(user.username, user.role) for user in users.list_users(app)} == {
            ("admin", "admin"),
            ("carol", "auditor"),
        }
    finally:
        app.close()


def test_login_session_and_logout(appliance: Appliance) -> None:
    users.create_user(appliance, "alice", PASSWORD, "auditor")
    throttle = auth.LoginThrottle()
    session = auth.login(appliance, "alice", PASSWORD, "127.0.0.1", throttle)
    principal = auth.resolve_session(appliance, session.cookie_value, "127.0.0.1")
    assert principal is not None and principal.role == "auditor"
    assert auth.csrf_matches(principal, principal.csrf_token)
    assert not auth.csrf_matches(principal, "forged")
    assert not auth.csrf_matches(principal, None)
    with pytest.raises(auth.ForbiddenError):
        principal.require_admin("deleting a certificate")
    auth.logout(appliance, session.cookie_value, "127.0.0.1")
    assert auth.resolve_session(appliance, session.cookie_value, "127.0.0.1") is None


def test_sessions_expire_when_idle(appliance: Appliance) -> None:
    session = auth.login(appliance, "admin", _admin_password(appliance), "c", auth.LoginThrottle())
    later = appliance.now() + auth.SESSION_IDLE + dt.timedelta(seconds=1)
    appliance.clock = lambda: later
    assert auth.resolve_session(appliance, session.cookie_value, "127.0.0.1") is None


def _admin_password(appliance: Appliance) -> str:
    users.change_password(appliance, "admin", PASSWORD)
    return PASSWORD


def test_failed_logins_are_throttled(appliance: Appliance) -> None:
    users.create_user(appliance, "alice", PASSWORD, "admin")
    throttle = auth.LoginThrottle(limit=3)
    for _ in range(3):
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, "alice", "wrong password!", "10.0.0.1", throttle)
    with pytest.raises(auth.ThrottledError):
        auth.login(appliance, "alice", PASSWORD, "10.0.0.1", throttle)


def test_one_client_cannot_lock_the_account_out_for_the_others(appliance: Appliance) -> None:
    users.create_user(appliance, "alice", PASSWORD, "admin")
    throttle = auth.LoginThrottle(limit=3, account_limit=6)
    for _ in range(3):
        with pytest.raises(auth.AuthenticationError):
            auth.login(appliance, "alice", "wrong password!", "198.51.100.7", throttle)
    with pytest.raises(auth.ThrottledError):  # the guesser is refused, even the right password
        auth.login(appliance, "alice", PASSWORD, "198.51.100.7", throttle)
    with pytest.raises(auth.ThrottledError):  # and for every other username too
        auth.login(appliance, "bob", "any password!", "198.51.100.7", throttle)
    # The administrator, from elsewhere, gets in.
    assert auth.login(appliance, "alice", PASSWORD, "10.0.0.2", throttle).principal.username


def test_twenty_addresses_of_one_network_count_as_one_client(appliance: Appliance) -> None:
    users.create_user(appliance, "alice", PASSWORD, "admin")
    throttle = auth.LoginThrottle(limit=5)
    for host in range(1, 6):
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, "alice", "wrong password!", f"192.0.2.{host}", throttle)
    for host in range(6, 21):  # the other 15 addresses of the /24 are refused unchecked
        with pytest.raises(auth.ThrottledError):
            auth.login(appliance, "alice", PASSWORD, f"192.0.2.{host}", throttle)
    for client in ("2001:db8:1:2::a", "2001:db8:1:2:ffff::1"):  # IPv6: per /64
        assert auth.client_network(client) == "2001:db8:1:2::/64"
    assert auth.client_network("::ffff:192.0.2.77") == "192.0.2.0/24"
    # The administrator, from elsewhere, gets in at once.
    attempt = auth.begin_login(appliance, "alice", "10.0.0.2", throttle)
    assert attempt.delay == 0
    assert auth.finish_login(appliance, attempt, PASSWORD, throttle).principal.username


def test_logging_in_as_oneself_does_not_reset_the_network_s_guesses(
    appliance: Appliance,
) -> None:
    """A successful login forgets its own username's failures, not the guesses its network
    made at another account: else a guesser with an account of their own reset the count
    every four guesses by logging in as themselves."""
    users.create_user(appliance, "alice", PASSWORD, "admin")
    users.create_user(appliance, "mallory", "mallory's own password", "auditor")
    throttle = auth.LoginThrottle(limit=5)
    for host in range(1, 5):
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, "alice", f"guess {host}", f"203.0.113.{host}", throttle)
    auth.login(appliance, "mallory", "mallory's own password", "203.0.113.9", throttle)
    with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
        auth.login(appliance, "alice", "guess 5", "203.0.113.5", throttle)
    with pytest.raises(auth.ThrottledError):
        auth.login(appliance, "alice", "guess 6", "203.0.113.6", throttle)
    # One's own mistakes are forgotten on logging in: four more may follow.
    for _ in range(4):
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, "alice", "mistyped", "10.0.0.2", throttle)
    auth.login(appliance, "alice", PASSWORD, "10.0.0.2", throttle)
    for _ in range(4):
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, "alice", "mistyped", "10.0.0.2", throttle)
    assert auth.login(appliance, "alice", PASSWORD, "10.0.0.2", throttle).principal.username


def test_a_username_no_user_can_have_is_unknown_not_a_store_failure(
    appliance: Appliance,
) -> None:
    """A NUL (typed into the login form, or in a /users/NAME URL) or a lone surrogate is
    no user's: PostgreSQL refused the query and the answer was 503 "store unavailable"."""
    throttle = auth.LoginThrottle()
    for name in ("admin\x00", "a\x00b", "a\ud800b"):
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, name, "any password at all", "192.0.2.1", throttle)
        with pytest.raises(NotFoundError):
            users.delete_user(appliance, name)
        with pytest.raises(NotFoundError):
            users.change_password(appliance, name, PASSWORD)


def test_many_networks_together_slow_the_account_down_but_never_lock_it(
    appliance: Appliance,
) -> None:
    users.create_user(appliance, "alice", PASSWORD, "admin")
    throttle = auth.LoginThrottle(limit=5, account_limit=20, slowdown=0.01)
    for network in range(20):  # 20 networks, each under its own limit
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, "alice", "wrong password!", f"198.18.{network}.1", throttle)
    attempt = auth.begin_login(appliance, "alice", "10.0.0.2", throttle)
    assert attempt.delay == throttle.slowdown  # slowed down...
    session = auth.finish_login(appliance, attempt, PASSWORD, throttle)  # ...but let in
    assert session.principal.username == "alice"
    # other accounts are not slowed down
    assert auth.begin_login(appliance, "bob", "10.0.0.3", throttle).delay == 0


def test_unknown_users_cost_the_same_password_check_as_known_ones(
    appliance: Appliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Login took 4 ms for an unknown user and 139 ms for a known one: the Argon2
    verification is what the time tells, so it must run either way (counted here, not
    timed: bench/bench_login.py prints the times)."""
    users.create_user(appliance, "alice", PASSWORD, "admin")
    verified: list[str] = []

    class Counting(PasswordHasher):  # argon2's own hasher, each verification noted
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(str(hash))
            return super().verify(hash, password)

    monkeypatch.setattr(users, "_hasher", Counting())
    throttle = auth.LoginThrottle()
    for username in ("alice", "nobody-by-this-name"):
        with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
            auth.login(appliance, username, "wrong password!", f"10.1.{len(verified)}.1", throttle)
    assert len(verified) == 2
    assert all(found.startswith("$argon2id$") for found in verified)
    with pytest.raises(auth.AuthenticationError):  # the dummy hash matches nothing
        auth.login(appliance, "nobody-by-this-name", "", "10.2.0.1", throttle)


def test_the_current_password_check_is_throttled_like_login(appliance: Appliance) -> None:
    users.create_user(appliance, "alice", PASSWORD, "auditor")
    throttle = auth.LoginThrottle(limit=3)
    session = auth.login(appliance, "alice", PASSWORD, "10.3.0.1", throttle)
    principal = session.principal
    new = "a brand new password"
    with pytest.raises(ValidationError, match="at least 10"):  # no guess: never counted
        auth.change_own_password(appliance, principal, "wrong guess", "short", throttle)
    for _ in range(3):
        with pytest.raises(ValidationError, match="not your current password"):
            auth.change_own_password(appliance, principal, "wrong guess", new, throttle)
    with pytest.raises(auth.ThrottledError):  # the right one, refused unchecked
        auth.change_own_password(appliance, principal, PASSWORD, new, throttle)
    with pytest.raises(auth.ThrottledError):  # the same counters as the login page
        auth.login(appliance, "alice", PASSWORD, "10.3.0.9", throttle)
    elsewhere = auth.login(appliance, "alice", PASSWORD, "10.4.0.1", throttle).principal
    auth.change_own_password(appliance, elsewhere, PASSWORD, new, throttle)
    assert auth.login(appliance, "alice", new, "10.4.0.1", throttle).principal.username


def test_failed_logins_count_in_every_process_and_expire(
    appliance: Appliance, data_dir: Path, database_url: str | None
) -> None:
    """Each worker of `certgate serve` has its own Appliance on the same store: failures
    made through one refuse logins through another, until the window has passed."""
    users.create_user(appliance, "alice", PASSWORD, "admin")
    throttle = auth.LoginThrottle(limit=3)
    other = Appliance.open(data_dir, database_url)
    try:
        for worker in (appliance, other, appliance):
            with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
                auth.login(worker, "alice", "wrong password!", "10.0.0.9", throttle)
        with pytest.raises(auth.ThrottledError, match="try again in 15 minute"):
            auth.login(other, "alice", PASSWORD, "10.0.0.9", throttle)
        later = appliance.now() + throttle.window + dt.timedelta(seconds=1)
        other.clock = lambda: later
        assert auth.login(other, "alice", PASSWORD, "10.0.0.9", throttle).principal.username
        # a success forgets the failures: two, a success, two more, and no refusal
        for attempt in range(5):
            if attempt == 2:
                auth.login(other, "alice", PASSWORD, "10.0.0.9", throttle)
                continue
            with pytest.raises(auth.AuthenticationError, match="wrong username or password"):
                auth.login(other, "alice", "wrong password!", "10.0.0.9", throttle)
        assert auth.login(other, "alice", PASSWORD, "10.0.0.9", throttle).principal.username
    finally:
        other.close()


def test_parallel_guesses_get_no_more_password_checks_than_the_limit(
    appliance: Appliance,
) -> None:
    users.create_user(appliance, "alice", PASSWORD, "admin")
    throttle = auth.LoginThrottle(limit=5)
    outcomes: list[str] = []

    def guess() -> None:
        try:
            auth.login(appliance, "alice", "wrong password!", "10.0.0.66", throttle)
        except auth.ThrottledError:
            outcomes.append("throttled")
        except auth.AuthenticationError:
            outcomes.append("checked")

    threads = [threading.Thread(target=guess) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("checked") == throttle.limit
    assert outcomes.count("throttled") == 24 - throttle.limit


def test_changing_a_password_ends_sessions(appliance: Appliance) -> None:
    users.create_user(appliance, "alice", PASSWORD, "admin")
    session = auth.login(appliance, "alice", PASSWORD, "c", auth.LoginThrottle())
    users.change_password(appliance, "alice", "another long password")
    assert auth.resolve_session(appliance, session.cookie_value, "127.0.0.1") is None


def test_api_tokens(appliance: Appliance) -> None:
    value, view = auth.create_token(
        appliance, "deploy bot", "auditor", created_by=Actor("admin", "127.0.0.1")
    )
    assert value.startswith(auth.TOKEN_PREFIX) and view.last_used_at is None
    principal = auth.resolve_token(appliance, value, "127.0.0.1")
    assert principal is not None and principal.role == "auditor" and principal.via == "token"
    [listed] = auth.list_tokens(appliance)
    assert listed.last_used_at is not None
    assert value not in repr(listed)  # only the hash is kept
    auth.revoke_token(appliance, view.id)
    assert auth.resolve_token(appliance, value, "127.0.0.1") is None
    assert auth.resolve_token(appliance, "cgt_not-a-token", "127.0.0.1") is None


def test_logins_do_not_bump_the_listeners_revision(appliance: Appliance) -> None:
    users.change_password(appliance, "admin", PASSWORD)
    before = appliance.store.revision()
    session = auth.login(appliance, "admin", PASSWORD, "c", auth.LoginThrottle())
    auth.resolve_session(appliance, session.cookie_value, "127.0.0.1")
    assert appliance.store.revision() == before


@pytest.mark.parametrize("command", [["user", "add", "carol"], ["user", "password", "admin"]])
def test_a_password_typed_at_the_prompt_is_asked_twice(
    certgate: Certgate, command: list[str]
) -> None:
    """A typo in a password typed once made an account no one can log in to (the only
    administrator's, with ``user password admin``)."""
    typed = [PASSWORD, PASSWORD + "x", PASSWORD, PASSWORD]

    shown = on_a_terminal(certgate.data_dir, command, typed)

    assert "do not match" in shown, shown
    app = Appliance.open(certgate.data_dir)
    try:
        user = command[2]
        auth.login(app, user, PASSWORD, "tests", auth.LoginThrottle())
    finally:
        app.close()


def test_a_token_of_the_longest_name_makes_tokens_on_postgresql(
    tmp_path: Path, postgresql_url: str
) -> None:
    """A token records its maker as ``token:<name>``: with a name of 100 characters (the
    limit) that is 106, which the column (64) refused on PostgreSQL."""
    initialise(tmp_path / "data", postgresql_url)
    app = Appliance.open(tmp_path / "data", postgresql_url)
    try:
        maker = "m" * 100
        auth.create_token(app, maker, "admin")
        _, made = auth.create_token(app, "child", "auditor", Actor(f"token:{maker}", "192.0.2.1"))
        assert made.name == "child"
        [child] = [token for token in auth.list_tokens(app) if token.name == "child"]
        assert child.created_by == f"token:{maker}"
    finally:
        app.close()
