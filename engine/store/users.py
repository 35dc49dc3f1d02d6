"""The review console's local users: one row per login, with the lockout counters kept across restarts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from engine.state import Role, User
from engine.store import tables as t
from engine.store.base import SessionBase


def _user(row: sa.RowMapping) -> User:
    return User.model_validate({**dict(row), "role": Role(row["role"])})


def _values(user: User) -> dict[str, Any]:
    return {**user.model_dump(), "role": user.role.value}


class UsersMixin(SessionBase):
    def add_user(self, user: User) -> bool:
        """Insert the user; False (and nothing changed) when the login exists already."""
        insert = (
            self._insert(t.users).values(**_values(user)).on_conflict_do_nothing(index_elements=["login"])
        )
        return self._conn.execute(insert.returning(t.users.c.login)).first() is not None

    def save_user(self, user: User) -> None:
        """Overwrite the stored user with the same login (a new password, role or lockout state)."""
        values = _values(user)
        self._conn.execute(sa.update(t.users).where(t.users.c.login == user.login).values(**values))

    def get_user(self, login: str) -> User | None:
        row = self._one(sa.select(t.users).where(t.users.c.login == login))
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        return [_user(r) for r in self._all(sa.select(t.users).order_by(t.users.c.login))]

    def delete_user(self, login: str) -> bool:
        return bool(self._conn.execute(sa.delete(t.users).where(t.users.c.login == login)).rowcount)

    def record_failed_login(self, login: str, now: datetime, limit: int, lock_for: timedelta) -> User | None:
        """Count one failed sign-in (in the database, so concurrent tries all count); at `limit` in a row
        the login is locked until `now + lock_for`. None for an unknown login."""
        c = t.users.c
        counted = self._conn.execute(
            sa.update(t.users).where(c.login == login).values(failed_logins=c.failed_logins + 1)
        )
        if not counted.rowcount:
            return None
        self._conn.execute(
            sa.update(t.users)
            .where(c.login == login, c.failed_logins >= limit)
            .values(locked_until=now + lock_for, failed_logins=0)
        )
        return self.get_user(login)

    def record_login(self, login: str, now: datetime) -> None:
        """A good sign-in: the failure count starts again."""
        statement = sa.update(t.users).where(t.users.c.login == login)
        self._conn.execute(statement.values(failed_logins=0, locked_until=None, last_login_at=now))
