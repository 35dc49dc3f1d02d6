"""The console's local users: adding one, and signing in with lockout after repeated failures."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.errors import ConfigurationError
from engine.passwords import check_password, hash_password
from engine.ports import StoreSession
from engine.state import Role, User

#: Failed sign-ins in a row that lock a login, and for how long.
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,79}")


@dataclass(frozen=True)
class SignInRefused:
    """Why a sign-in failed, in words safe to show (never whether the login exists)."""

    message: str


def check_login(login: str) -> str:
    login = login.strip()
    if not _LOGIN.fullmatch(login):
        raise ConfigurationError(
            f"not a usable login: {login!r}",
            detail="1 to 80 letters, digits and . _ @ + - (starting with a letter or digit)",
        )
    return login


def add_user(s: StoreSession, login: str, role: Role, password: str, now: datetime) -> User:
    """A new local user; ConfigurationError when the login is taken or the password too short."""
    try:
        hashed = hash_password(password)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    user = User(login=check_login(login), role=role, password_hash=hashed, created_at=now)
    if not s.add_user(user):
        raise ConfigurationError(f"the login {user.login!r} exists already")
    return user


def set_password(s: StoreSession, login: str, password: str) -> User:
    user = s.get_user(login)
    if user is None:
        raise ConfigurationError(f"no user {login!r}")
    try:
        changed = user.model_copy(update={"password_hash": hash_password(password)})
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    s.save_user(changed)
    return changed


def unlock(s: StoreSession, login: str) -> User:
    user = s.get_user(login)
    if user is None:
        raise ConfigurationError(f"no user {login!r}")
    s.save_user(user.model_copy(update={"failed_logins": 0, "locked_until": None}))
    return user


def sign_in(s: StoreSession, login: str, password: str, now: datetime) -> User | SignInRefused:
    """The user, when the password is right and the login not locked; else why not. Every wrong
    password counts toward the lockout, persisted, so restarts and other replicas count too."""
    user = s.get_user(login.strip())
    if user is not None and user.locked_until is not None and user.locked_until > now:
        minutes = max(1, math.ceil((user.locked_until - now).total_seconds() / 60))
        return SignInRefused(
            f"Too many failed sign-ins: this login is locked for {minutes} more minute(s), "
            "or until an admin runs `ledgersync users unlock`."
        )
    if not check_password(user.password_hash if user else None, password) or user is None:
        if user is not None:
            counted = s.record_failed_login(user.login, now, MAX_FAILURES, LOCK_FOR)
            if counted is not None and counted.locked_until is not None and counted.locked_until > now:
                return SignInRefused(
                    f"Too many failed sign-ins: this login is locked for {LOCK_FOR.seconds // 60} minutes."
                )
        return SignInRefused("Wrong login or password.")
    s.record_login(user.login, now)
    return user
