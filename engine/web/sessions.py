"""Signed session cookies: who is signed in, for how long, sealed with a key derived from secret_key.

The cookie holds the login, its role, when it was issued and a fingerprint of the password hash (so a
new password ends every session of the old one), signed with HMAC-SHA256. Every process built from the
same settings accepts it (a restart, another replica); nothing is kept on the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.state import Role, User

COOKIE = "ledgersync_session"
#: A session lasts a working day; signing in again starts a new one.
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    login: str
    role: Role
    issued: datetime
    fingerprint: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def fingerprint(user: User) -> str:
    """Changes whenever the user's password does."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SessionSigner:
    key: bytes

    def seal(self, user: User, now: datetime) -> str:
        payload = {"u": user.login, "r": user.role.value, "t": int(now.timestamp()), "p": fingerprint(user)}
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
        return f"{body}.{self._mac(body)}"

    def cookie(self, user: User, now: datetime, *, secure: bool) -> dict[str, Any]:
        """`Response.set_cookie` arguments for a new session of `user`."""
        return {
            "key": COOKIE,
            "value": self.seal(user, now),
            "max_age": int(LIFETIME.total_seconds()),
            "httponly": True,
            # Lax: the session rides along when QuickBooks or an identity provider sends the browser
            # back (a top-level GET from another site); a POST from another site never carries it.
            "samesite": "lax",
            "secure": secure,
            "path": "/",
        }

    def open(self, cookie: str | None, now: datetime) -> Session | None:
        """The session in `cookie`, or None when it is missing, forged, malformed or expired."""
        body, _, mac = (cookie or "").partition(".")
        if not body or not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body.encode()))
            issued = datetime.fromtimestamp(int(payload["t"]), tz=now.tzinfo)
            session = Session(str(payload["u"]), Role(payload["r"]), issued, str(payload["p"]))
        except (ValueError, KeyError, TypeError):
            return None
        if not issued - timedelta(minutes=5) <= now < issued + LIFETIME:
            return None
        return session

    def _mac(self, body: str) -> str:
        return hmac.new(self.key, b"session\0" + body.encode(), hashlib.sha256).hexdigest()
