"""The in-process loop over two in-memory fakes: the real engine (store, runner, policy), fake sides."""

from __future__ import annotations

from dataclasses import dataclass

from engine.clock import SystemClock
from engine.fakes.connector import FakeConnector
from engine.model import Side
from engine.ports import Clock
from engine.runner import Runner
from engine.store import SqlStateStore, open_store
from policies import PolicySet


@dataclass
class InProcess:
    """The in-process loop over two in-memory fakes (the real connectors plug in the same way)."""

    runner: Runner
    store: SqlStateStore
    app: FakeConnector
    quickbooks: FakeConnector


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
