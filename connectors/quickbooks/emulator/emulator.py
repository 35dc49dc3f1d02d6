"""One running emulator: the companies it hosts, wired to the shared clock, OAuth authority, request log
and webhook courier."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from connectors.quickbooks.emulator import persistence
from connectors.quickbooks.emulator.clock import EmulatorClock
from connectors.quickbooks.emulator.company import Company
from connectors.quickbooks.emulator.config import DEFAULT_REALM_ID, CompanyConfig, EmulatorConfig
from connectors.quickbooks.emulator.context import Context
from connectors.quickbooks.emulator.courier import Courier
from connectors.quickbooks.emulator.injection import FaultPlan
from connectors.quickbooks.emulator.oauth import Authority
from connectors.quickbooks.emulator.requestlog import RequestLog
from connectors.quickbooks.emulator.store import Store
from connectors.quickbooks.emulator.throttle import Throttle
from connectors.quickbooks.emulator.webhooks import WebhookQueue


class Emulator:
    """Holds the state; the Starlette app (see `app.py`) is only its HTTP face.

    `store`, `ctx`, `throttle`, `faults`, `replays` and `webhooks` are the default company's (the first),
    so code written for a one-company emulator keeps working; `companies` holds them all by realm id.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock(config.tz, config.start_time)
        self.authority = Authority(config, self.clock)
        self.requests = RequestLog()
        self.courier = Courier(config.webhook_workers, config.webhook_timeout)
        self.companies: dict[str, Company] = {}
        self._hosting = threading.Lock()
        self._save_lock = threading.Lock()
        for declared in config.companies():
            if declared.realm_id in self.companies:
                raise ValueError(f"realm {declared.realm_id} is declared twice")
            self._host(declared)
        self._default = self.companies[config.realm_id]
        if config.state_file is not None and config.state_file.exists():
            persistence.load(self, config.state_file)

    @property
    def default(self) -> Company:
        """The first company: the one `realm_id` names, and the one a consent without a pick connects."""
        return self._default

    @property
    def store(self) -> Store:
        return self.default.store

    @property
    def ctx(self) -> Context:
        return self.default.ctx

    @property
    def throttle(self) -> Throttle:
        return self.default.throttle

    @property
    def faults(self) -> FaultPlan:
        return self.default.faults

    @property
    def replays(self) -> dict[str, tuple[int, bytes]]:
        return self.default.replays

    @property
    def webhooks(self) -> WebhookQueue:
        return self.default.webhooks

    def add_company(
        self, realm_id: str | None = None, *, created_at: datetime | None = None, **settings: Any
    ) -> Company:
        """Host one more company: `realm_id` (none: the next free one) with `settings` (the fields of
        `CompanyConfig`: company_name, webhook_url, limits...). Its records are made at its first use."""
        with self._hosting:
            declared = CompanyConfig(realm_id or self._free_realm_id(), **settings)
            if declared.realm_id in self.companies:
                raise ValueError(f"the emulator already hosts realm {declared.realm_id}")
            return self._host(declared, created_at)

    def is_connected(self, realm_id: str | None = None) -> bool:
        """Whether the company (the default one if not named) has a live OAuth grant."""
        realm = realm_id or self.default.realm_id
        return any(g.realm_id == realm and not g.revoked for g in list(self.authority.state.grants.values()))

    def changed(self) -> None:
        """Persist after a change, when a state file is configured."""
        if self.config.state_file is not None:
            with self._save_lock:
                persistence.save(self, self.config.state_file)

    def start(self) -> None:
        """Nothing to start: webhook threads start with the first event to deliver."""

    def stop(self) -> None:
        self.courier.stop()
        self.changed()

    def _host(self, declared: CompanyConfig, created_at: datetime | None = None) -> Company:
        company = Company(
            declared, self.config, self.clock, self.is_connected, self.courier.schedule, created_at
        )
        self.companies[declared.realm_id] = company
        return company

    def _free_realm_id(self) -> str:
        """The next of 9341455600000002, ...03, ... that no hosted company has."""
        candidate = int(DEFAULT_REALM_ID) + len(self.companies)
        while str(candidate) in self.companies:
            candidate += 1
        return str(candidate)
