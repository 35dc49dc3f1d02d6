"""Settings of one emulator instance: identity, credentials, limits and configurable uncertainties."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
DEFAULT_REALM_ID = "9341455600000001"
DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_VERIFIER_TOKEN = "emulator-verifier-token"
#: Intuit's retry schedule for unacknowledged webhooks (seconds), then every 6 h forever.
INTUIT_WEBHOOK_RETRY_DELAYS = (10.0, 20.0, 30.0, 300.0, 1200.0, 7200.0, 14400.0, 21600.0)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an emulator needs; every field has a documented default (see docs/emulator.md)."""

    realm_id: str = DEFAULT_REALM_ID
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    company_name: str = "Emulated Company"
    webhook_url: str | None = None
    verifier_token: str = DEFAULT_VERIFIER_TOKEN
    webhook_format: Literal["cloudevents", "legacy"] = "cloudevents"
    state_file: Path | None = None

    # OAuth
    redirect_uri_allowlist: tuple[str, ...] = ()  # empty: any redirect URI is accepted
    deny_consent: bool = False
    access_token_ttl: float = 3600.0
    refresh_token_ttl: float = 8726400.0  # x_refresh_token_expires_in of a fresh token (101 days)
    refresh_token_hard_ttl: float = 5 * 365 * 86400.0
    refresh_rotation_interval: float = 86400.0  # a refresh returns a new refresh token this often
    refresh_grace_period: float = 86400.0  # how long a rotated-away refresh token still works
    auth_code_ttl: float = 600.0

    # Company clock: a fixed UTC offset for MetaData timestamps; the clock starts at `start_time`
    timezone_offset_hours: float = -8.0
    start_time: datetime | None = None  # None: the real current time

    # Limits (per realm). A "minute" can be shortened so tests run fast.
    minute_seconds: float = 60.0
    requests_per_minute: int = 500
    batch_requests_per_minute: int = 40
    max_in_flight: int = 10
    requests_per_second: int | None = None  # Intuit's "10 per second"; off unless set
    batch_max_items: int = 30
    query_max_results: int = 1000
    query_default_results: int = 100
    cdc_max_objects: int = 1000
    cdc_max_days: int = 30
    requestid_max_length: int = 50
    batch_requestid_max_length: int = 36
    batch_bid_max_length: int = 10

    # Uncertain behaviour made configurable
    duplicate_name_detail: Literal["id", "documented"] = "id"
    retry_after_header: int | None = None  # Retry-After on 429 is undocumented; off by default

    # Webhook delivery
    webhook_batch_window: float = 1.0  # seconds to gather events into one POST
    webhook_batch_max: int = 100
    webhook_timeout: float = 3.0
    webhook_retry_delays: tuple[float, ...] = INTUIT_WEBHOOK_RETRY_DELAYS

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.timezone_offset_hours))
