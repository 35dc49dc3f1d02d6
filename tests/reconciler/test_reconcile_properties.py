"""Hypothesis properties of the pure reconciler: idempotent, echo-free, convergent, one-way safe."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.model import EntityType, Side, Version, parse_record, record_fields
from engine.normalize import normalize_value
from engine.plan import ConflictPolicy, Direction, OpKind, Plan
from engine.reconcile import Ledger, SideState, directions, reconcile
from tests.reconciler import RECONCILER_SETTINGS
from tests.reconciler.rules import Rules

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CUSTOMER = EntityType.CUSTOMER
EDITABLE = {
    "email": st.sampled_from(["a@x.io", "A@X.io ", "b@x.io", "c@x.io", None]),
    "phone": st.sampled_from(["555-010-2000", "(555) 010 2000", "555-999-0000", None]),
    "notes": st.sampled_from(["", "VIP", "pays late", "  VIP "]),
    "given_name": st.sampled_from(["Zoë", "Zoe", "José", None]),
    "active": st.booleans(),
}
edits = st.dictionaries(st.sampled_from(sorted(EDITABLE)), st.none(), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: EDITABLE[k] for k in keys})
)
rules = st.builds(
    Rules,
    direction_=st.sampled_from([Direction.BOTH, Direction.APP_TO_QUICKBOOKS, Direction.QUICKBOOKS_TO_APP]),
    conflict=st.sampled_from(list(ConflictPolicy)),
    field_directions=st.dictionaries(
        st.sampled_from(sorted(EDITABLE)), st.sampled_from(list(Direction)), max_size=2
    ),
    field_conflicts=st.dictionaries(
        st.sampled_from(sorted(EDITABLE)), st.sampled_from(list(ConflictPolicy)), max_size=2
    ),
)


def customer(**changes: Any) -> dict[str, Any]:
    return record_fields(parse_record(CUSTOMER, {"display_name": "Ada", "email": "a@x.io", **changes}))


@dataclass
class World:
    """Two sides of one linked record, a base and a ledger, with plans applied as the runner would."""

    base: dict[str, Any]
    sides: dict[Side, dict[str, Any]]
    seqs: dict[Side, int] = field(default_factory=lambda: {Side.APP: 1, Side.QUICKBOOKS: 1})
    ledger: dict[tuple[Side, int], dict[str, Any]] = field(default_factory=dict)
    minute: int = 0

    def edit(self, side: Side, changes: dict[str, Any]) -> None:
        self.sides[side] = {**self.sides[side], **changes}
        self.seqs[side] += 1
        self.minute += 1

    def state(self, side: Side) -> SideState:
        at = T0 + timedelta(minutes=self.minute + (1 if side is Side.APP else 0))
        return SideState(
            external_id="1", version=Version(seq=self.seqs[side], at=at), fields=self.sides[side]
        )

    def plan(self, policy: Rules, ledger: Ledger | None = None) -> Plan:
        states = self.state(Side.APP), self.state(Side.QUICKBOOKS)
        return reconcile(CUSTOMER, self.base, *states, policy, self.ledger if ledger is None else ledger)

    def apply(self, plan: Plan) -> None:
        self.base = {**self.base, **plan.settled}
        for write in plan.writes:
            assert write.kind is OpKind.UPDATE
            self.sides[write.side] = {**self.sides[write.side], **write.fields}
            self.seqs[write.side] += 1
            self.ledger[(write.side, self.seqs[write.side])] = dict(write.fields)
            self.base = {**self.base, **write.fields}


def world() -> World:
    start = customer()
    return World(base=start, sides={Side.APP: start, Side.QUICKBOOKS: start})


def edited(app_edit: dict[str, Any], qbo_edit: dict[str, Any]) -> World:
    """A synced record, then an edit on each side (either may be empty)."""
    w = world()
    w.edit(Side.APP, app_edit)
    w.edit(Side.QUICKBOOKS, qbo_edit)
    return w


def differing(w: World, policy: Rules) -> set[str]:
    synced = directions(CUSTOMER, policy)
    app, qbo = w.sides[Side.APP], w.sides[Side.QUICKBOOKS]
    return {f for f in synced if normalize_value(f, app[f]) != normalize_value(f, qbo[f])}


@RECONCILER_SETTINGS
@given(policy=rules, app_edit=edits, qbo_edit=edits)
def test_reconciling_the_result_again_plans_nothing(
    policy: Rules, app_edit: dict[str, Any], qbo_edit: dict[str, Any]
):
    w = edited(app_edit, qbo_edit)
    first = w.plan(policy)
    w.apply(first)
    again = w.plan(policy)
    assert again.writes == ()
    assert {c.field for c in again.conflicts} == {c.field for c in first.conflicts}


@RECONCILER_SETTINGS
@given(policy=rules, app_edit=edits, qbo_edit=edits)
def test_our_own_write_fed_back_plans_nothing(
    policy: Rules, app_edit: dict[str, Any], qbo_edit: dict[str, Any]
):
    w = edited(app_edit, qbo_edit)
    plan = w.plan(policy)
    base_before = w.base
    w.apply(plan)
    # Even against the base from before the write (the echo raced the snapshot), the ledger suppresses it.
    w.base = {**base_before, **plan.settled}
    for write in plan.writes:
        w.base = {**w.base, **{f: v for f, v in base_before.items() if f in write.fields}}
    assert [wr for wr in w.plan(policy).writes if wr.side.other in {p.side for p in plan.writes}] == []


@RECONCILER_SETTINGS
@given(policy=rules, app_edit=edits, qbo_edit=edits)
def test_applying_the_plan_converges_except_exactly_the_open_manual_conflicts(
    policy: Rules, app_edit: dict[str, Any], qbo_edit: dict[str, Any]
):
    w = edited(app_edit, qbo_edit)
    plan = w.plan(policy)
    w.apply(plan)
    assert differing(w, policy) == {c.field for c in plan.conflicts}
    assert all(c.policy is ConflictPolicy.MANUAL for c in plan.conflicts)


@RECONCILER_SETTINGS
@given(policy=rules, app_edit=edits, qbo_edit=edits)
def test_a_one_way_field_is_never_written_to_its_source(
    policy: Rules, app_edit: dict[str, Any], qbo_edit: dict[str, Any]
):
    w = edited(app_edit, qbo_edit)
    synced = directions(CUSTOMER, policy)
    for write in w.plan(policy).writes:
        for name in write.fields:
            assert synced[name].writes_to(write.side), (name, synced[name], write.side)


@RECONCILER_SETTINGS
@given(policy=rules, rounds=st.lists(st.tuples(st.sampled_from(list(Side)), edits), max_size=6))
def test_many_rounds_of_edits_stay_loop_free_and_lose_no_edit(
    policy: Rules, rounds: list[tuple[Side, dict[str, Any]]]
):
    w = world()
    writes = 0
    for side, changes in rounds:
        w.edit(side, changes)
        plan = w.plan(policy)
        w.apply(plan)
        writes += len(plan.writes)
        # Quiescent after each round: nothing more to do without a new edit.
        assert w.plan(policy).writes == ()
    # One edit can cause at most one write per side (propagate some fields, revert one-way ones).
    assert writes <= 2 * len(rounds)
    open_fields = {c.field for c in w.plan(policy).conflicts}
    assert differing(w, policy) == open_fields


@RECONCILER_SETTINGS
@given(
    policy=rules,
    app_edit=edits,
    qbo_edit=edits,
    minutes=st.tuples(st.integers(0, 9), st.integers(0, 9)),
    ours=st.dictionaries(
        st.sampled_from(list(Side)), st.lists(st.sampled_from(["display_name", *EDITABLE]), max_size=3)
    ),
)
def test_a_later_write_of_ours_on_either_side_changes_no_decision(
    policy: Rules,
    app_edit: dict[str, Any],
    qbo_edit: dict[str, Any],
    minutes: tuple[int, int],
    ours: dict[Side, list[str]],
):
    """Each side's user edit at its minute; then, on the sides in `ours`, a write of ours (after both
    edits) of fields that side did not edit, as the base holds them. Our write is no edit: the plan is
    the one made before it, `newest_wins` still goes by the users' minutes."""
    base = customer()
    edit = {Side.APP: app_edit, Side.QUICKBOOKS: qbo_edit}
    users = {side: T0 + timedelta(minutes=m) for side, m in zip(Side, minutes, strict=True)}
    before = {
        side: SideState(
            external_id="1", version=Version(seq=2, at=users[side]), fields={**base, **edit[side]}
        )
        for side in Side
    }
    after = dict(before)
    ledger: dict[tuple[Side, int], dict[str, Any]] = {}
    for side, names in ours.items():
        written = {f: base[f] for f in names if f not in edit[side]}
        after[side] = before[side].model_copy(
            update={"version": Version(seq=3, at=T0 + timedelta(minutes=30)), "user_at": users[side]}
        )
        ledger[(side, 3)] = written
    planned = reconcile(CUSTOMER, base, before[Side.APP], before[Side.QUICKBOOKS], policy, {})
    again = reconcile(CUSTOMER, base, after[Side.APP], after[Side.QUICKBOOKS], policy, ledger)
    assert {(w.side, tuple(sorted(w.fields.items()))) for w in again.writes} == {
        (w.side, tuple(sorted(w.fields.items()))) for w in planned.writes
    }
    assert again.conflicts == planned.conflicts
