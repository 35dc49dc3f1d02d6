"""One running emulator's parts, wired together: company data, clock, OAuth, limits, faults, webhooks."""

from __future__ import annotations

import threading

from connectors.quickbooks.emulator import persistence, records
from connectors.quickbooks.emulator.clock import EmulatorClock
from connectors.quickbooks.emulator.config import EmulatorConfig
from connectors.quickbooks.emulator.context import Context
from connectors.quickbooks.emulator.injection import FaultPlan
from connectors.quickbooks.emulator.oauth import Authority
from connectors.quickbooks.emulator.requestlog import RequestLog
from connectors.quickbooks.emulator.store import Store
from connectors.quickbooks.emulator.throttle import Throttle
from connectors.quickbooks.emulator.webhooks import WebhookDispatcher


class Emulator:
    """Holds the state; the Starlette app (see `app.py`) is only its HTTP face."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = EmulatorClock(config.tz, config.start_time)
        self.store = Store()
        self.ctx = Context(self.store, self.clock, config)
        self.authority = Authority(config, self.clock)
        self.throttle = Throttle(config)
        self.requests = RequestLog()
        self.faults = FaultPlan()
        #: (realm, requestid[, bIds]) -> (status, body): a repeated requestid replays the first answer.
        self.replays: dict[str, tuple[int, bytes]] = {}
        self.webhooks = WebhookDispatcher(config, self.faults, self.is_connected)
        self.store.listeners.append(self.webhooks.enqueue)
        self._save_lock = threading.Lock()
        if config.state_file is not None and config.state_file.exists():
            persistence.load(self, config.state_file)
        else:
            records.seed(self.ctx)

    def is_connected(self) -> bool:
        grants = self.authority.state.grants.values()
        return any(g.realm_id == self.config.realm_id and not g.revoked for g in grants)

    def changed(self) -> None:
        """Persist after a change, when a state file is configured."""
        if self.config.state_file is not None:
            with self._save_lock, self.store.lock:
                persistence.save(self, self.config.state_file)

    def start(self) -> None:
        self.webhooks.start()

    def stop(self) -> None:
        self.webhooks.stop()
        self.changed()
