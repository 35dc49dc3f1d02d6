"""Settings of one emulator instance: identity, credentials, limits, the companies it hosts, and
configurable uncertainties."""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from connectors.quickbooks.emulator.profile import CompanyProfile

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
DEFAULT_REALM_ID = "9341455600000001"
DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_VERIFIER_TOKEN = "emulator-verifier-token"
#: Intuit's retry schedule for unacknowledged webhooks (seconds), then every 6 h forever.
INTUIT_WEBHOOK_RETRY_DELAYS = (10.0, 20.0, 30.0, 300.0, 1200.0, 7200.0, 14400.0, 21600.0)


@dataclass(frozen=True)
class CompanyConfig:
    """One more company the emulator hosts beside its default one: a realm id, and what differs from
    the `EmulatorConfig` (None: the same). The app (client id, secret, verifier token, webhook format,
    OAuth rules) is one for every company, as one Intuit app connects many companies."""

    realm_id: str
    company_name: str | None = None  # None: "<EmulatorConfig.company_name> <realm id>"
    webhook_url: str | None = None  # None: the app's webhook_url
    timezone_offset_hours: float | None = None
    requests_per_minute: int | None = None
    batch_requests_per_minute: int | None = None
    max_in_flight: int | None = None
    requests_per_second: int | None = None

    def __post_init__(self) -> None:
        if not self.realm_id.strip() or "/" in self.realm_id:
            raise ValueError(f"not a realm id: {self.realm_id!r}")

    def applied_to(self, base: EmulatorConfig) -> EmulatorConfig:
        """The settings this company runs with: the base's, with its own realm, name and limits."""
        changes = {k: v for k, v in asdict(self).items() if v is not None}
        if self.realm_id != base.realm_id:
            changes.setdefault("company_name", f"{base.company_name} {self.realm_id}")
        return replace(base, **changes, extra_companies=())


#: What `CompanyConfig` (and `Emulator.add_company`, and `POST /_emulator/companies`) takes.
COMPANY_FIELDS = tuple(f.name for f in fields(CompanyConfig))


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything an emulator needs; every field has a documented default (see docs/emulator.md)."""

    realm_id: str = DEFAULT_REALM_ID
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    company_name: str = "Emulated Company"
    #: Country, sales tax, currencies and terms of the company (seeded once; see profile.py). Companies
    #: added beside the default one have the same profile.
    profile: CompanyProfile = field(default_factory=CompanyProfile)
    webhook_url: str | None = None
    verifier_token: str = DEFAULT_VERIFIER_TOKEN
    webhook_format: Literal["cloudevents", "legacy"] = "cloudevents"
    state_file: Path | None = None
    #: Companies hosted beside the default one (`realm_id`, `company_name`); more can be added at run time.
    extra_companies: tuple[CompanyConfig, ...] = ()
    #: A call with a valid token on a realm the emulator does not host: "forbidden" (403, 3100, as for
    #: another company's realm) or "not_found" (404, the error-codes page's "unknown URL or realm").
    unknown_realm_fault: Literal["forbidden", "not_found"] = "forbidden"

    # OAuth
    redirect_uri_allowlist: tuple[str, ...] = ()  # empty: any redirect URI is accepted
    deny_consent: bool = False
    #: With several companies, a consent URL without `realm` shows a page to pick one (as Intuit's
    #: consent does) instead of connecting the first company; for people clicking through in a browser.
    company_picker: bool = False
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
    #: Threads that POST webhooks, shared by every company (each company's events stay in order).
    webhook_workers: int = 4

    @property
    def tz(self) -> timezone:
        return timezone(timedelta(hours=self.timezone_offset_hours))

    def with_companies(self, count: int) -> EmulatorConfig:
        """These settings hosting `count` companies in all: the default one and `count - 1` more with
        numbered realm ids (9341455600000002, ...03, ...), as `add_company()` would number them."""
        if count < 1:
            raise ValueError("an emulator hosts at least one company")
        realms = (str(n) for n in itertools.count(int(DEFAULT_REALM_ID) + 1))
        more = itertools.islice((r for r in realms if r != self.realm_id), count - 1)
        return replace(self, extra_companies=tuple(CompanyConfig(realm) for realm in more))

    def companies(self) -> tuple[CompanyConfig, ...]:
        """Every company declared here, the default one first."""
        return (CompanyConfig(self.realm_id, self.company_name), *self.extra_companies)
