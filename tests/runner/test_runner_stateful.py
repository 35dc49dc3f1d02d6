"""A Hypothesis state machine over the whole runner: random edits on both sides, duplicated and
reordered deliveries, partial and repeated runs.

Invariants at quiescence: loop-free (writes bounded by user edits, and a further run writes nothing),
convergent (linked records equal on every synced field but exactly the open conflicts), and no lost
update (a field edited on one side only ends with that value on both sides, or in a conflict).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from engine.clock import FakeClock
from engine.fakes.connector import FakeConnector
from engine.model import ChangeEvent, EntityType, Side
from engine.normalize import normalize_value
from engine.reconcile import directions
from engine.runner import Runner
from engine.store import SqlStateStore
from policies import PolicySet

C = EntityType.CUSTOMER
POLICY = PolicySet.default()
SYNCED = directions(C, POLICY)
VALUES: dict[str, list[Any]] = {
    "email": ["a@x.io", "B@x.io", "c@x.io", None],
    "phone": ["555-010-2000", "(555) 010 2000", "555-999-0000"],
    "notes": ["VIP", "pays late", ""],
    "company_name": ["Acme", "Acme Inc", None],
    "active": [True, False],
}
_connections = itertools.count()
_store: SqlStateStore | None = None


def shared_store(tmp: Path) -> SqlStateStore:
    """One migrated SQLite store for every example; each example is its own connection in it."""
    global _store  # noqa: PLW0603 - built once per test session, examples isolate by connection id
    if _store is None:
        _store = SqlStateStore(f"sqlite:///{tmp / 'stateful.db'}", create=True)
    return _store


class SyncMachine(RuleBasedStateMachine):
    tmp: Path

    @initialize()
    def start(self) -> None:
        self.clock = FakeClock(datetime(2026, 11, 2, tzinfo=UTC))
        self.connection = f"c{next(_connections)}"
        self.sides = {
            Side.APP: FakeConnector(Side.APP, self.connection, self.clock),
            Side.QUICKBOOKS: FakeConnector(
                Side.QUICKBOOKS, self.connection, self.clock, computes_totals=True
            ),
        }
        self.store = shared_store(self.tmp)
        self.runner = Runner(self.store, self.sides, POLICY, self.clock, self.connection, entities=(C,))
        self.user_actions = 0
        #: Records people created, on both sides together, over the whole example.
        self.created = 0
        self.delivered: list[ChangeEvent] = []
        #: (side, external id, field) -> last value a user set, since the last quiescence.
        self.edits: dict[tuple[Side, str, str], Any] = {}
        self.names = itertools.count()

    def ids(self, side: Side) -> list[str]:
        return sorted(self.sides[side].all(C))

    @rule(side=st.sampled_from(list(Side)))
    def create(self, side: Side) -> None:
        self.clock.advance(7)
        self.sides[side].create(
            C, {"display_name": f"Customer {next(self.names)} ({side})", "email": "a@x.io"}
        )
        self.created += 1
        self.user_actions += 1

    @precondition(lambda self: any(self.ids(side) for side in Side))
    @rule(data=st.data(), side=st.sampled_from(list(Side)), field=st.sampled_from(sorted(VALUES)))
    def edit(self, data: st.DataObject, side: Side, field: str) -> None:
        ids = self.ids(side)
        if not ids:
            return
        record = data.draw(st.sampled_from(ids))
        value = data.draw(st.sampled_from(VALUES[field]))
        self.clock.advance(5)
        self.sides[side].edit(C, record, **{field: value})
        self.delivered.append(self.sides[side].fetch(C, record))
        self.edits[(side, record, field)] = value
        self.user_actions += 1

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """A webhook or poll delivers an event again, possibly after newer ones (duplicate, reordered)."""
        self.runner.ingest(data.draw(st.sampled_from(self.delivered)))

    @rule()
    def one_pass(self) -> None:
        self.runner.run_once()

    @rule()
    def quiesce(self) -> None:
        writes_before = self.writes()
        self.runner.run_until_quiet()
        assert self.writes() - writes_before <= self.user_actions, "more writes than user edits: a loop"
        self.check_converged()
        self.user_actions = 0
        self.edits = {}

    def teardown(self) -> None:
        # Every example ends at quiescence, with the invariants checked there.
        if hasattr(self, "runner"):
            self.quiesce()

    def writes(self) -> int:
        return sum(side.writes for side in self.sides.values())

    def check_converged(self) -> None:
        writes = self.writes()
        assert self.runner.run_until_quiet().applied == 0 and self.writes() == writes, "not quiescent"
        with self.store.session() as s:
            links = s.list_links(self.connection, C)
            open_fields = {(c.link_id, c.field) for c in s.list_conflicts(self.connection, open_only=True)}
        for link in links:
            if link.app_id is None or link.quickbooks_id is None:
                continue
            app = self.sides[Side.APP].get(C, link.app_id)
            qbo = self.sides[Side.QUICKBOOKS].get(C, link.quickbooks_id)
            assert app is not None and qbo is not None
            for field in SYNCED:
                same = normalize_value(field, app[field]) == normalize_value(field, qbo[field])
                conflicted = (link.id, field) in open_fields
                assert same != conflicted, (field, app[field], qbo[field], conflicted)
                self.check_not_lost(link.app_id, link.quickbooks_id, field, app, conflicted)

    def check_not_lost(
        self, app_id: str, qbo_id: str, field: str, app: dict[str, Any], conflicted: bool
    ) -> None:
        by_app = self.edits.get((Side.APP, app_id, field), _UNSET)
        by_qbo = self.edits.get((Side.QUICKBOOKS, qbo_id, field), _UNSET)
        if conflicted or (by_app is _UNSET) == (by_qbo is _UNSET):
            return  # untouched, or edited on both sides (a conflict its policy decided)
        wanted = by_app if by_qbo is _UNSET else by_qbo
        assert normalize_value(field, app[field]) == normalize_value(field, wanted), (
            field,
            wanted,
            app[field],
        )

    @invariant()
    def no_side_holds_a_duplicate(self) -> None:
        # A record copied twice (a retried create, a redelivered event) would push a side past the
        # number of records people created at all.
        for side in Side:
            assert len(self.sides[side].all(C)) <= self.created, f"{side} holds a duplicate"


_UNSET = object()


def test_runner_state_machine(tmp_path_factory: Any) -> None:
    SyncMachine.tmp = tmp_path_factory.mktemp("stateful")
    try:
        run_state_machine_as_test(SyncMachine, settings=settings(settings.default, stateful_step_count=12))
    finally:
        global _store  # noqa: PLW0603
        if _store is not None:
            _store.dispose()
            _store = None
