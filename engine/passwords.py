"""Passwords of the console's local users: Argon2id hashes (argon2-cffi is imported here and nowhere else)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes).
_HASHER = PasswordHasher()

MIN_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; a None hash (unknown login) costs the same and is False."""
    try:
        return _HASHER.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@cache
def _dummy() -> str:
    """Checked when the login is unknown, so a wrong name takes as long as a wrong password."""
    return _HASHER.hash("no such user: this hash is only ever compared against")
