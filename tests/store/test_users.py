"""The console's users in the store, and signing in with lockout (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.accounts import LOCK_FOR, MAX_FAILURES, SignInRefused, add_user, set_password, sign_in, unlock
from engine.errors import ConfigurationError
from engine.state import Role, User
from engine.store import SqlStateStore
from tests.support.samples import at

PASSWORD = "a long enough password"


def test_a_user_is_stored_with_a_hash_never_the_password(store: SqlStateStore) -> None:
    with store.session() as s:
        made = add_user(s, "maria", Role.REVIEWER, PASSWORD, at(0))
    with store.session() as s:
        stored = s.get_user("maria")
        assert s.get_user("nobody") is None
        assert [u.login for u in s.list_users()] == ["maria"]
    assert stored == made and stored.role is Role.REVIEWER
    assert PASSWORD not in stored.password_hash and stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in repr(stored) and "argon2" not in repr(stored)


@pytest.mark.parametrize(
    ("login", "password", "says"),
    [
        ("maria", PASSWORD, "exists already"),
        ("has space", PASSWORD, "not a usable login"),
        ("", PASSWORD, "not a usable login"),
        ("newcomer", "short", "at least 10 characters"),
    ],
)
def test_a_taken_login_a_bad_login_and_a_short_password_are_refused(
    store: SqlStateStore, login: str, password: str, says: str
) -> None:
    with store.session() as s:
        add_user(s, "maria", Role.REVIEWER, PASSWORD, at(0))
    with store.session() as s, pytest.raises(ConfigurationError, match=says):
        add_user(s, login, Role.ADMIN, password, at(1))


def test_five_wrong_passwords_lock_the_login_for_a_while_even_for_the_right_one(store: SqlStateStore) -> None:
    with store.session() as s:
        add_user(s, "maria", Role.REVIEWER, PASSWORD, at(0))
    for n in range(MAX_FAILURES):
        with store.session() as s:
            refused = sign_in(s, "maria", f"guess {n}", at(1))
        assert isinstance(refused, SignInRefused)
    assert "locked for 15 minutes" in refused.message
    with store.session() as s:
        still = sign_in(s, "maria", PASSWORD, at(1) + LOCK_FOR - timedelta(seconds=1))
        locked = s.get_user("maria")
    assert isinstance(still, SignInRefused) and "locked" in still.message
    assert locked is not None and locked.locked_until == at(1) + LOCK_FOR
    with store.session() as s:  # the lock has run out: the right password works, the count starts again
        user = sign_in(s, "maria", PASSWORD, at(1) + LOCK_FOR)
        after = s.get_user("maria")
    assert isinstance(user, User) and after is not None
    assert after.failed_logins == 0 and after.locked_until is None and after.last_login_at is not None


def test_an_admin_unlocks_and_a_new_password_replaces_the_old(store: SqlStateStore) -> None:
    with store.session() as s:
        add_user(s, "maria", Role.REVIEWER, PASSWORD, at(0))
        for _ in range(MAX_FAILURES):
            sign_in(s, "maria", "wrong", at(1))
        unlock(s, "maria")
        assert isinstance(sign_in(s, "maria", PASSWORD, at(2)), User)
        set_password(s, "maria", "another long password")
        assert isinstance(sign_in(s, "maria", PASSWORD, at(3)), SignInRefused)
        assert isinstance(sign_in(s, "maria", "another long password", at(3)), User)
        assert s.delete_user("maria") and not s.delete_user("maria")


def test_an_unknown_login_is_refused_like_a_wrong_password(store: SqlStateStore) -> None:
    with store.session() as s:
        refused = sign_in(s, "nobody", PASSWORD, at(0))
    assert isinstance(refused, SignInRefused) and refused.message == "Wrong login or password."
