"""Token custody (DESIGN.md): tokens encrypted in the state store, refreshed ahead of expiry and once
after a 401, single-flight per connection under the store's row lock, the rotated refresh token
committed before the new access token is used; a dead grant parks the connection as `needs_reauth`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from connectors.quickbooks.crypto import TokenCipher
from connectors.quickbooks.oauth import OAuthClient, TokenSet
from connectors.quickbooks.settings import QboSettings
from engine.errors import ConfigurationError, LedgersyncError, NeedsReauthorizationError, RetriableError
from engine.ports import Clock, StateStore
from engine.state import Connection, ConnectionStatus

log = logging.getLogger(__name__)

#: How often the scheduled job (`refresh_tokens`) runs.
REFRESH_JOB_INTERVAL = timedelta(minutes=45)


class ReauthNotice(BaseModel):
    """What goes out when a connection needs a human to reconnect it: no secrets."""

    model_config = ConfigDict(frozen=True)

    event: str = "needs_reauthorization"
    connection_id: str
    realm_id: str | None
    reason: str
    at: datetime


class Notifier(Protocol):
    def needs_reauthorization(self, notice: ReauthNotice) -> None: ...


class WebhookNotifier:
    """POSTs the notice as JSON to a configured URL; a failed POST is logged, never raised."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http = http
        self.url = url

    def needs_reauthorization(self, notice: ReauthNotice) -> None:
        try:
            response = self.http.post(self.url, json=notice.model_dump(mode="json"), timeout=10.0)
            if response.status_code >= 300:
                log.warning("reauthorization notice refused: HTTP %d", response.status_code)
        except httpx.HTTPError as error:
            log.warning("reauthorization notice not delivered: %s", type(error).__name__)


class RefreshReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    refreshed: tuple[str, ...] = ()
    needs_reauth: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


def hard_expiry_warning(connection: Connection, now: datetime, within: timedelta) -> str | None:
    """A sentence for humans when the refresh token's absolute expiry is near (or passed)."""
    hard = connection.refresh_hard_expires_at
    if hard is None or hard - now >= within:
        return None
    days = (hard - now).days
    when = "has passed" if hard <= now else f"is in {days} day{'s' if days != 1 else ''}"
    return (
        f"connection {connection.id}: the QuickBooks authorization's hard expiry {when} "
        f"({hard:%Y-%m-%d}); reconnect with `ledgersync connect --connection {connection.id}`"
    )


class TokenCustodian:
    """Hands out valid access tokens for stored connections, refreshing them safely."""

    def __init__(
        self,
        store: StateStore,
        oauth: OAuthClient,
        cipher: TokenCipher,
        clock: Clock,
        settings: QboSettings,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self.store = store
        self.oauth = oauth
        self.cipher = cipher
        self.clock = clock
        self.settings = settings
        if notifier is None and settings.notify_webhook_url:
            notifier = WebhookNotifier(oauth.http, settings.notify_webhook_url)
        self.notifier = notifier
        self._lock = threading.Lock()
        self._cache: dict[str, TokenSet] = {}
        self._warned: set[str] = set()

    # connecting

    def connect(self, connection_id: str, tokens: TokenSet, *, app_tenant: str | None = None) -> Connection:
        """Store a new grant (first connect or reconnect): the connection is `connected` again.

        Links and snapshots live in their own tables and are untouched. A reconnect must be to the same
        company: links to another realm's ids would be wrong.
        """
        now = self.clock.now()
        with self.store.session() as session:
            existing = session.lock_connection(connection_id)
            if existing is not None and existing.realm_id and existing.realm_id != tokens.realm_id:
                raise ConfigurationError(
                    f"connection {connection_id} belongs to QuickBooks company {existing.realm_id}, "
                    f"not {tokens.realm_id}; use another connection id for another company"
                )
            base = existing or Connection(id=connection_id)
            tenant = app_tenant or base.app_tenant
            holder = next(
                (
                    c
                    for c in session.list_connections()
                    if c.realm_id == tokens.realm_id and c.id != connection_id and c.app_tenant != tenant
                ),
                None,
            )
            if holder is not None:
                # Two tenants in one company would read and write each other's records.
                raise ConfigurationError(
                    f"QuickBooks company {tokens.realm_id} is connected to tenant {holder.app_tenant} already"
                    f" (connection {holder.id}); each tenant connects a company of its own"
                )
            connection = self._with_tokens(base, tokens, now).model_copy(
                update={
                    "realm_id": tokens.realm_id,
                    "environment": self.settings.environment,
                    "app_tenant": tenant,
                }
            )
            session.save_connection(connection)
        with self._lock:
            self._cache[connection_id] = tokens
            self._warned.discard(connection_id)
        log.info(
            "QuickBooks connection %s",
            "reconnected" if existing else "connected",
            extra={"connection": connection_id, "realm": tokens.realm_id},
        )
        self._warn_hard_expiry(connection, now)
        return connection

    # handing out tokens

    def access_token(self, connection_id: str) -> str:
        """A valid access token, refreshed first when less than the margin remains."""
        now = self.clock.now()
        margin = self.settings.refresh_margin
        with self._lock:
            cached = self._cache.get(connection_id)
        if cached is not None and not cached.expires_within(now, margin):
            return cached.access_token.get_secret_value()
        with self.store.session() as session:
            connection = self._usable(session.get_connection(connection_id), connection_id)
        current = self._decrypt(connection)
        if not current.expires_within(now, margin):
            self._remember(connection_id, current)
            return current.access_token.get_secret_value()
        return self._refresh(connection_id, failed_access_token=None, within=margin)

    def after_unauthorized(self, connection_id: str, failed_access_token: str) -> str:
        """QuickBooks refused `failed_access_token` (401): refresh once, unless another worker already did."""
        return self._refresh(connection_id, failed_access_token, within=self.settings.refresh_margin)

    def refresh_due(
        self,
        now: datetime | None = None,
        within: timedelta | None = None,
        only: Collection[str] | None = None,
    ) -> RefreshReport:
        """The scheduled job: refresh every connected grant whose access token expires within `within`
        (default: the refresh margin); warn about hard expiries. One failure does not stop the rest.
        `only`: the connections this custodian's app registration serves (None: every one)."""
        now = now or self.clock.now()
        within = within or self.settings.refresh_margin
        with self.store.session() as session:
            connections = session.list_connections()
        if only is not None:
            connections = [c for c in connections if c.id in only]
        refreshed: list[str] = []
        parked: list[str] = []
        failed: list[str] = []
        for connection in connections:
            if connection.status is not ConnectionStatus.CONNECTED or connection.tokens_encrypted is None:
                continue
            self._warn_hard_expiry(connection, now)
            expires = connection.access_expires_at
            if expires is not None and expires - now >= within:
                continue
            try:
                self._refresh(connection.id, failed_access_token=None, within=within)
                refreshed.append(connection.id)
            except NeedsReauthorizationError:
                parked.append(connection.id)
            except RetriableError as error:
                log.warning(
                    "token refresh failed, will retry: %s", error, extra={"connection": connection.id}
                )
                failed.append(connection.id)
        return RefreshReport(refreshed=tuple(refreshed), needs_reauth=tuple(parked), failed=tuple(failed))

    def disconnect(self, connection_id: str) -> Connection:
        """Revoke the grant at Intuit and mark the connection `revoked`, its tokens dropped; links and
        snapshots stay for a reconnect (to the same company), and no other connection is touched. A
        revocation Intuit refuses (the grant already gone) still disconnects here."""
        with self.store.session() as session:
            connection = session.lock_connection(connection_id)
            if connection is None:
                raise ConfigurationError(f"no QuickBooks connection {connection_id}")
            tokens = self._decrypt(connection) if connection.tokens_encrypted is not None else None
            revoked = connection.model_copy(
                update={
                    "status": ConnectionStatus.REVOKED,
                    "tokens_encrypted": None,
                    "access_expires_at": None,
                    "updated_at": self.clock.now(),
                }
            )
            session.save_connection(revoked)
        with self._lock:
            self._cache.pop(connection_id, None)
        if tokens is not None:
            try:
                self.oauth.revoke(tokens.refresh_token)
            except LedgersyncError as error:
                log.warning(
                    "revoking at Intuit failed (%s); disconnected here",
                    error,
                    extra={"connection": connection_id},
                )
        log.info(
            "QuickBooks connection revoked", extra={"connection": connection_id, "realm": connection.realm_id}
        )
        return revoked

    def mark_needs_reauth(self, connection_id: str, reason: str) -> None:
        """Park the connection (its ops wait) and notify; idempotent."""
        with self.store.session() as session:
            connection = session.lock_connection(connection_id)
            if connection is None or connection.status is ConnectionStatus.NEEDS_REAUTH:
                return
            session.save_connection(self._parked(connection))
        self._notify(connection, reason)

    # internals

    def _refresh(self, connection_id: str, failed_access_token: str | None, within: timedelta) -> str:
        refused: NeedsReauthorizationError | None = None
        with self.store.session() as session:
            connection = self._usable(session.lock_connection(connection_id), connection_id)
            current = self._decrypt(connection)
            now = self.clock.now()
            stored = current.access_token.get_secret_value()
            # Another worker refreshed while we waited for the lock (or the token is still good).
            refreshed_elsewhere = failed_access_token is None or stored != failed_access_token
            if refreshed_elsewhere and not current.expires_within(now, within):
                self._remember(connection_id, current)
                return stored
            try:
                fresh = self.oauth.refresh(current.refresh_token, connection.realm_id)
            except NeedsReauthorizationError as error:
                refused = error
                session.save_connection(self._parked(connection))
            else:
                connection = self._with_tokens(connection, fresh, now)
                session.save_connection(connection)
        # Committed: the rotated refresh token is safe before anyone uses the new access token.
        if refused is not None:
            self._notify(connection, refused.message)
            raise NeedsReauthorizationError(
                f"QuickBooks connection {connection_id} needs to be reconnected",
                detail=refused.detail,
                tid=refused.tid,
            ) from refused
        self._remember(connection_id, fresh)
        log.info("QuickBooks tokens refreshed", extra={"connection": connection_id})
        self._warn_hard_expiry(connection, now)
        return fresh.access_token.get_secret_value()

    def _usable(self, connection: Connection | None, connection_id: str) -> Connection:
        if connection is not None and connection.status is ConnectionStatus.REVOKED:
            raise NeedsReauthorizationError(
                f"QuickBooks connection {connection_id} is revoked",
                detail=f"reconnect with `ledgersync connect --connection {connection_id}`",
            )
        if connection is None or connection.tokens_encrypted is None:
            raise ConfigurationError(
                f"no QuickBooks connection {connection_id}",
                detail=f"run `ledgersync connect --connection {connection_id}`",
            )
        if connection.status is not ConnectionStatus.CONNECTED:
            with self._lock:
                self._cache.pop(connection_id, None)
            raise NeedsReauthorizationError(
                f"QuickBooks connection {connection_id} is {connection.status.value}",
                detail=f"reconnect with `ledgersync connect --connection {connection_id}`",
            )
        return connection

    def _decrypt(self, connection: Connection) -> TokenSet:
        assert connection.tokens_encrypted is not None
        return self.cipher.decrypt(connection.tokens_encrypted)

    def _remember(self, connection_id: str, tokens: TokenSet) -> None:
        with self._lock:
            self._cache[connection_id] = tokens

    def _with_tokens(self, connection: Connection, tokens: TokenSet, now: datetime) -> Connection:
        return connection.model_copy(
            update={
                "status": ConnectionStatus.CONNECTED,
                "tokens_encrypted": self.cipher.encrypt(tokens),
                "access_expires_at": tokens.expires_at,
                "refresh_expires_at": tokens.refresh_expires_at,
                "refresh_hard_expires_at": tokens.refresh_hard_expires_at
                or connection.refresh_hard_expires_at,
                "updated_at": now,
            }
        )

    def _parked(self, connection: Connection) -> Connection:
        with self._lock:
            self._cache.pop(connection.id, None)
        return connection.model_copy(
            update={"status": ConnectionStatus.NEEDS_REAUTH, "updated_at": self.clock.now()}
        )

    def _notify(self, connection: Connection, reason: str) -> None:
        log.warning(
            "QuickBooks connection %s needs to be reconnected (%s): its ops wait; "
            "run `ledgersync connect --connection %s`",
            connection.id,
            reason,
            connection.id,
            extra={"connection": connection.id, "realm": connection.realm_id},
        )
        if self.notifier is not None:
            notice = ReauthNotice(
                connection_id=connection.id, realm_id=connection.realm_id, reason=reason, at=self.clock.now()
            )
            self.notifier.needs_reauthorization(notice)

    def _warn_hard_expiry(self, connection: Connection, now: datetime) -> None:
        warning = hard_expiry_warning(connection, now, self.settings.hard_expiry_warning)
        if warning is not None and connection.id not in self._warned:
            self._warned.add(connection.id)
            log.warning(warning, extra={"connection": connection.id})
