"""`QboSettings`: how to reach QuickBooks (or an emulator), the app's credentials, and the limits to keep.

Nothing here reads the environment: the CLI or the config loader builds the settings once, at the edge.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

SANDBOX = "sandbox"
PRODUCTION = "production"
ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
#: QuickBooks' notifications are a few KiB: a body a thousand times that is not one.
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
#: Where the web app finishes the OAuth flow (connect_routes serves it).
CALLBACK_PATH = "/callback"

_API_BASE = {
    PRODUCTION: "https://quickbooks.api.intuit.com/v3",
    SANDBOX: "https://sandbox-quickbooks.api.intuit.com/v3",
}
_DISCOVERY = {
    PRODUCTION: "https://developer.api.intuit.com/.well-known/openid_configuration",
    SANDBOX: "https://developer.api.intuit.com/.well-known/openid_sandbox_configuration",
}


class QboSettings(BaseModel):
    """Everything the QuickBooks transport needs; frozen, secrets as SecretStr."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: "sandbox", "production", or an emulator's base URL (http://127.0.0.1:8700).
    environment: str = SANDBOX
    client_id: str
    client_secret: SecretStr
    #: Where Intuit sends the browser back; register it in the Intuit app. Unless given, the composition
    #: derives it from the web app's address (`with_web_address`), so `ledgersync connect` and the web
    #: /connect send the same one; this default is that address for the default web settings.
    redirect_uri: str = "http://localhost:8000" + CALLBACK_PATH
    scopes: tuple[str, ...] = (ACCOUNTING_SCOPE,)
    minorversion: int = 75

    #: Refresh the access token when less than this remains.
    refresh_margin: timedelta = timedelta(minutes=15)
    #: Warn when the refresh token's absolute (5-year) expiry is closer than this.
    hard_expiry_warning: timedelta = timedelta(days=30)

    requests_per_minute: int = Field(500, gt=0)
    max_in_flight: int = Field(10, gt=0)
    batch_requests_per_minute: int = Field(40, gt=0)
    #: Requests started per second (a sixtieth of `minute_seconds`): Intuit's current wording of the
    #: 10 concurrent requests; kept as well as `max_in_flight`, since quick answers make bursts. None: off.
    requests_per_second: int | None = Field(10, gt=0)
    #: Length of a rate-limit "minute" in seconds; tests shorten it (so does the emulator).
    minute_seconds: float = Field(60.0, gt=0)
    #: Wait after a 429 without Retry-After (Intuit: 60 s); None means one `minute_seconds`.
    throttle_penalty_seconds: float | None = None
    #: 429s retried before RateLimitedError reaches the caller.
    throttle_retries: int = Field(3, ge=0)
    #: How long a worker's call waits for its company's rate budget before it hands its message back,
    #: delayed, so that its thread serves other companies meanwhile (`ledgersync sync` and the other
    #: one-shot commands wait as long as it takes).
    budget_patience_seconds: float = Field(2.0, ge=0)
    #: 5xx and timeouts retried (same requestid) before UpstreamUnavailableError.
    server_error_retries: int = Field(4, ge=0)
    #: The wait before retry n (from 0): between half of and all of min(max, base * 2**n)
    #: (`engine.backoff.backoff_delay`).
    backoff_base_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, ge=0)
    #: Per-request timeout; QuickBooks gives up after 120 s itself.
    timeout_seconds: float = Field(60.0, gt=0)

    #: Writes in /batch requests of up to `batch_max_items`, in dependency waves, several in flight: a
    #: backfill of 320 records ran at 500 records/min this way against 105/min with single writes (bench
    #: backfill). A batch is metered (CorePlus) where single writes are free; off: single writes only.
    batch_writes: bool = True
    batch_max_items: int = Field(30, gt=0, le=30)
    #: Metered (CorePlus) reads the plan includes per month: 500,000 on Intuit's Builder tier. /metrics
    #: shows the month's reads against it; alerts say when they reach `alerts.quota_percent` of it.
    metered_read_quota: int = Field(500_000, gt=0)

    webhook_verifier_token: SecretStr | None = None
    #: The largest webhook body the receiver parses; a larger signed one is acknowledged and kept unread.
    webhook_max_body_bytes: int = Field(WEBHOOK_MAX_BODY_BYTES, gt=0)
    #: POSTed (JSON, no secrets) when a connection needs re-authorization.
    notify_webhook_url: str | None = None

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value in (SANDBOX, PRODUCTION):
            return value
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc:
            return value.rstrip("/")
        raise ValueError(
            "must be 'sandbox', 'production', or an emulator base URL such as http://127.0.0.1:8700"
        )

    def with_web_address(self, base_url: str) -> Self:
        """These settings with the callback of the web app at `base_url` as the redirect URI, unless
        `redirect_uri` was given explicitly (a proxy that rewrites paths, an address registered earlier)."""
        if "redirect_uri" in self.model_fields_set:
            return self
        return self.model_copy(update={"redirect_uri": base_url.rstrip("/") + CALLBACK_PATH})

    @property
    def is_emulator(self) -> bool:
        return self.environment not in (SANDBOX, PRODUCTION)

    @property
    def api_base(self) -> str:
        """Where `/company/{realmId}/...` hangs."""
        return _API_BASE.get(self.environment, f"{self.environment}/v3")

    @property
    def discovery_url(self) -> str:
        """The OpenID discovery document that names the OAuth endpoints."""
        return _DISCOVERY.get(self.environment, f"{self.environment}/.well-known/openid_configuration")

    @property
    def throttle_penalty(self) -> float:
        """Seconds to hold a realm's calls after a 429 that named no Retry-After."""
        return self.minute_seconds if self.throttle_penalty_seconds is None else self.throttle_penalty_seconds
