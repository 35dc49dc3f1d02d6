"""One company (realm) the emulator hosts: its records, limits, faults, requestid replays and webhooks.

Companies share the emulator's clock and its OAuth authority (one Intuit app, many connected companies);
everything else is the company's own, so a 429 storm, a disconnect or a burst of writes in one leaves
the others as they were. A company's records are made (seeded) at its first use, so hosting hundreds of
idle companies costs little memory and no thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from connectors.quickbooks.emulator import records
from connectors.quickbooks.emulator.clock import EmulatorClock
from connectors.quickbooks.emulator.config import CompanyConfig, EmulatorConfig
from connectors.quickbooks.emulator.context import Context
from connectors.quickbooks.emulator.injection import FaultPlan
from connectors.quickbooks.emulator.store import Store
from connectors.quickbooks.emulator.throttle import Throttle
from connectors.quickbooks.emulator.webhooks import WebhookQueue


class Company:
    """One realm: what it was declared with, the settings it runs with, and its own state."""

    def __init__(
        self,
        declared: CompanyConfig,
        app: EmulatorConfig,
        clock: EmulatorClock,
        is_connected: Callable[[str], bool],
        schedule: Callable[[WebhookQueue, float], None],
        created_at: datetime | None = None,
    ) -> None:
        #: What was asked for this company (kept as asked, so a state file does not freeze inherited values).
        self.declared = declared
        #: The settings it runs with: the app's, with its own realm, name, time zone, limits and webhook URL.
        self.config = config = declared.applied_to(app)
        self.realm_id = config.realm_id
        self.clock = clock
        #: When the company came to be: the CreateTime of its seeded records, whenever they are made.
        self.created_at = created_at or clock.now()
        self.throttle = Throttle(config)
        self.faults = FaultPlan()
        #: (realm, requestid[, bIds]) -> (status, body): a repeated requestid replays the first answer.
        self.replays: dict[str, tuple[int, bytes]] = {}
        self.webhooks = WebhookQueue(config, self.faults, lambda: is_connected(self.realm_id), schedule)
        self._ctx: Context | None = None
        self._opening = threading.Lock()

    @property
    def ctx(self) -> Context:
        """The company's rules context; its records are seeded on the first call."""
        ctx = self._ctx
        if ctx is None:
            with self._opening:
                if self._ctx is None:
                    store = Store()
                    records.seed(Context(store, self.clock, self.config), self.created_at)
                    self.adopt(store)
                ctx = self._ctx
                assert ctx is not None
        return ctx

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def opened(self) -> bool:
        """Whether its records exist yet (anything asked of it beyond its limits and faults)."""
        return self._ctx is not None

    def adopt(self, store: Store) -> None:
        """Take `store` (seeded, or loaded from a state file) as the company's records."""
        store.listeners.append(self.webhooks.enqueue)
        self._ctx = Context(store, self.clock, self.config)
