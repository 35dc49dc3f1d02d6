"""The one composition module: wires store, connectors, policy and clock into a runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from connectors.quickbooks.settings import QboSettings
from engine.clock import SystemClock
from engine.fakes.connector import FakeConnector
from engine.model import Side
from engine.ports import Clock
from engine.runner import Runner
from engine.settings import Config
from engine.store import SqlStateStore, open_store
from policies import PolicySet, load_policy

#: The configuration file's connector sections and the models that validate them.
SECTIONS: dict[str, type[BaseModel]] = {"quickbooks": QboSettings}


def open_configured_store(config: Config) -> SqlStateStore:
    """The state store the configuration names, migrated to the newest schema."""
    return open_store(config.settings.state_url)


def configured_policy(config: Config) -> PolicySet:
    return load_policy(config.path(config.settings.policy)) if config.settings.policy else PolicySet.default()


@dataclass
class InProcess:
    """The in-process loop over two in-memory fakes (the real connectors plug in the same way)."""

    runner: Runner
    store: SqlStateStore
    app: FakeConnector
    quickbooks: FakeConnector


def load_policy_or_default(path: Path | None) -> PolicySet:
    return load_policy(path) if path is not None else PolicySet.default()


def in_process(
    state: str | SqlStateStore, policy: PolicySet, clock: Clock | None = None, connection: str = "default"
) -> InProcess:
    """Wire the loop on a state store URL (migrated on open) or an already open store."""
    clock = clock or SystemClock()
    store = open_store(state) if isinstance(state, str) else state
    app = FakeConnector(Side.APP, connection, clock)
    quickbooks = FakeConnector(Side.QUICKBOOKS, connection, clock, computes_totals=True)
    runner = Runner(store, {Side.APP: app, Side.QUICKBOOKS: quickbooks}, policy, clock, connection)
    return InProcess(runner=runner, store=store, app=app, quickbooks=quickbooks)
