"""Token custody as Intuit does it: single-use codes, 1-hour access tokens, rotating refresh tokens."""

from __future__ import annotations

import secrets
import string
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from connectors.quickbooks.emulator.clock import EmulatorClock
from connectors.quickbooks.emulator.config import EmulatorConfig


class OAuthError(Exception):
    """An OAuth error answer: HTTP status plus the `error` code Intuit sends."""

    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        out = {"error": self.error}
        if self.description:
            out = {"error_description": self.description, **out}
        return out


def invalid_grant() -> OAuthError:
    return OAuthError(400, "invalid_grant", "Token invalid")


@dataclass
class Grant:
    """One connection: a company authorized one app. Revoking it kills every token it issued."""

    grant_id: str
    realm_id: str
    scope: str
    created_at: float
    hard_expires_at: float
    revoked: bool = False
    current_refresh: str = ""


@dataclass
class RefreshToken:
    grant_id: str
    issued_at: float
    expires_at: float
    superseded_at: float | None = None


@dataclass
class AccessToken:
    grant_id: str
    expires_at: float


@dataclass
class AuthCode:
    grant_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class TokenIssue:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    hard_expires_in: int


@dataclass
class OAuthState:
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "grants": {k: asdict(v) for k, v in self.grants.items()},
            "refresh_tokens": {k: asdict(v) for k, v in self.refresh_tokens.items()},
            "access_tokens": {k: asdict(v) for k, v in self.access_tokens.items()},
            "codes": {k: asdict(v) for k, v in self.codes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OAuthState:
        return cls(
            grants={k: Grant(**v) for k, v in data.get("grants", {}).items()},
            refresh_tokens={k: RefreshToken(**v) for k, v in data.get("refresh_tokens", {}).items()},
            access_tokens={k: AccessToken(**v) for k, v in data.get("access_tokens", {}).items()},
            codes={k: AuthCode(**v) for k, v in data.get("codes", {}).items()},
        )


def _random(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _access_token_value() -> str:
    # Opaque JWE-looking and long, as Intuit's are (often over 900 characters).
    return "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.." + secrets.token_urlsafe(700)


def _refresh_token_value(now: float) -> str:
    return (
        f"RT1-{secrets.randbelow(90) + 10}-H3-{int(now)}{_random(20, string.ascii_lowercase + string.digits)}"
    )


class Authority:
    """Issues and checks tokens against the emulator clock."""

    def __init__(self, config: EmulatorConfig, clock: EmulatorClock, state: OAuthState | None = None) -> None:
        self.config = config
        self.clock = clock
        self.state = state or OAuthState()
        #: Held around each change: the custody is one for every company the emulator hosts.
        self.lock = threading.RLock()

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if client_id != self.config.client_id or client_secret != self.config.client_secret:
            raise OAuthError(401, "invalid_client")

    def issue_code(self, redirect_uri: str, scope: str, realm_id: str) -> str:
        """The code of a new grant: the company `realm_id` authorizes the app."""
        now = self.clock.timestamp()
        grant = Grant(
            grant_id=_random(16),
            realm_id=realm_id,
            scope=scope,
            created_at=now,
            hard_expires_at=now + self.config.refresh_token_hard_ttl,
        )
        self.state.grants[grant.grant_id] = grant
        code = "AB11" + _random(40)
        self.state.codes[code] = AuthCode(grant.grant_id, redirect_uri, now + self.config.auth_code_ttl)
        return code

    def exchange_code(self, code: str | None, redirect_uri: str | None) -> TokenIssue:
        now = self.clock.timestamp()
        entry = self.state.codes.get(code or "")
        if entry is None or entry.used or entry.expires_at <= now or entry.redirect_uri != redirect_uri:
            raise invalid_grant()
        entry.used = True
        grant = self._live_grant(entry.grant_id, now)
        return self._issue(grant, now, rotate=True)

    def refresh(self, refresh_token: str | None) -> TokenIssue:
        now = self.clock.timestamp()
        entry = self.state.refresh_tokens.get(refresh_token or "")
        if entry is None or entry.expires_at <= now:
            raise invalid_grant()
        if entry.superseded_at is not None and now > entry.superseded_at + self.config.refresh_grace_period:
            raise invalid_grant()
        grant = self._live_grant(entry.grant_id, now)
        current = self.state.refresh_tokens[grant.current_refresh]
        due = now - current.issued_at >= self.config.refresh_rotation_interval
        return self._issue(grant, now, rotate=due)

    def revoke(self, token: str | None) -> None:
        """Revoking either token of a connection ends the whole connection."""
        entry: RefreshToken | AccessToken | None = self.state.refresh_tokens.get(token or "")
        if entry is None:
            entry = self.state.access_tokens.get(token or "")
        if entry is None:
            raise OAuthError(400, "invalid_request", "Token is not valid")
        self.state.grants[entry.grant_id].revoked = True

    def disconnect(self, realm_id: str) -> int:
        """What a user clicking Disconnect in QuickBooks does: every grant for the realm dies."""
        count = 0
        for grant in self.state.grants.values():
            if grant.realm_id == realm_id and not grant.revoked:
                grant.revoked = True
                count += 1
        return count

    def authenticate(self, bearer: str | None) -> tuple[str | None, str]:
        """(realm id, "") for a good access token, else (None, the 401 detail)."""
        if not bearer:
            return None, "Malformed bearer token: too short or too long"
        entry = self.state.access_tokens.get(bearer)
        if entry is None:
            return None, "Malformed bearer token: too short or too long"
        grant = self.state.grants[entry.grant_id]
        if entry.expires_at <= self.clock.timestamp() or grant.revoked:
            return None, f"Token expired: {bearer[:30]}"
        return grant.realm_id, ""

    def _live_grant(self, grant_id: str, now: float) -> Grant:
        grant = self.state.grants[grant_id]
        if grant.revoked or grant.hard_expires_at <= now:
            raise invalid_grant()
        return grant

    def _issue(self, grant: Grant, now: float, *, rotate: bool) -> TokenIssue:
        expires_at = min(now + self.config.refresh_token_ttl, grant.hard_expires_at)
        if rotate or not grant.current_refresh:
            old = self.state.refresh_tokens.get(grant.current_refresh)
            if old is not None:
                old.superseded_at = now
            grant.current_refresh = _refresh_token_value(now)
            self.state.refresh_tokens[grant.current_refresh] = RefreshToken(grant.grant_id, now, expires_at)
        else:
            self.state.refresh_tokens[grant.current_refresh].expires_at = expires_at  # rolling window
        access = _access_token_value()
        self.state.access_tokens[access] = AccessToken(grant.grant_id, now + self.config.access_token_ttl)
        return TokenIssue(
            access_token=access,
            refresh_token=grant.current_refresh,
            expires_in=int(self.config.access_token_ttl),
            refresh_expires_in=int(expires_at - now),
            hard_expires_in=int(grant.hard_expires_at - now),
        )
