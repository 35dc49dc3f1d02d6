"""Reconciler properties over sparse and odd states: bases of every coverage, half-filled sides.

A first match stores as base only what both sides agreed on, so a base may hold every field, a few,
or none; a side may hold a record with most fields empty. Whatever the coverage, every field that
differs from the base on either side must end up written, settled, or in a conflict: nothing is
dropped without a trace. And applying the plan converges, except exactly the open conflicts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.model import WRITTEN_TOGETHER, EntityType, Side, Version, field_names
from engine.normalize import normalize_value
from engine.plan import ConflictPolicy, Direction, OpKind, Plan
from engine.reconcile import SideState, directions, reconcile
from tests.reconciler import RECONCILER_SETTINGS
from tests.reconciler.rules import Rules

T0 = datetime(2026, 11, 1, tzinfo=UTC)
CUSTOMER = EntityType.CUSTOMER
INVOICE = EntityType.INVOICE

_text = st.sampled_from(["", " ", "Ada", "ada ", "Zoë", "Zoe", "pays late", "  VIP ", "VIP"])
_maybe_text = st.none() | _text
_address = st.none() | st.fixed_dictionaries(
    {"lines": st.lists(st.sampled_from(["1 Main St", "", "Suite 2"]), max_size=2)},
    optional={
        "city": st.sampled_from(["Springfield", "springfield", None]),
        "postal_code": st.sampled_from(["12345", None]),
    },
)
CUSTOMER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "display_name": st.sampled_from(["Ada", "Ada Lovelace", "ada", "Grace"]),
    "given_name": _maybe_text,
    "family_name": _maybe_text,
    "company_name": _maybe_text,
    "email": st.sampled_from(["a@x.io", "A@X.io ", "b@x.io", "", None]),
    "phone": st.sampled_from(["555-010-2000", "(555) 010 2000", "555-999-0000", None]),
    "billing_address": _address,
    "notes": _maybe_text,
    "active": st.booleans(),
    "currency": st.sampled_from(["EUR", None]),
}
assert set(CUSTOMER_VALUES) == set(field_names(CUSTOMER))

_ref = st.sampled_from([{"entity": "item", "id": "L-1"}, {"entity": "item", "id": "L-2"}])
_line = st.fixed_dictionaries(
    {"amount": st.sampled_from(["10.00", "10", "20.50"])},
    optional={
        "item": _ref,
        "quantity": st.sampled_from(["1", "2", "1.0"]),
        "description": _maybe_text,
        "taxable": st.booleans(),
        "tax_code": st.sampled_from(["3", None]),
    },
)
INVOICE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "customer": st.sampled_from([{"entity": "customer", "id": "L-c1"}, {"entity": "customer", "id": "L-c2"}]),
    "doc_number": st.sampled_from(["1001", "1002", None]),
    "txn_date": st.sampled_from(["2026-11-01", "2026-11-02", None]),
    "due_date": st.sampled_from(["2026-12-01", None]),
    "lines": st.lists(_line, max_size=3),
    "private_note": _maybe_text,
    "tax_code": st.sampled_from(["2", None]),
    "terms": st.sampled_from(["3", None]),
    "discount_percent": st.sampled_from(["10", "10.0", None]),
    "discount": st.sampled_from(["5.00", "5", None]),
    "tax_after_discount": st.sampled_from([True, None]),
    "shipping": st.sampled_from(["7.50", None]),
    "currency": st.sampled_from(["EUR", None]),
    "exchange_rate": st.sampled_from(["1.1", "1.10", None]),
    "tax_total": st.sampled_from(["0.80", None]),
    "total": st.sampled_from(["10.00", "30.50", None]),
    "balance": st.sampled_from(["0.00", "10.00", None]),
    "home_total": st.sampled_from(["11.00", None]),
}
assert set(INVOICE_VALUES) == set(field_names(INVOICE))
VALUES = {CUSTOMER: CUSTOMER_VALUES, INVOICE: INVOICE_VALUES}


def partial(entity: EntityType) -> st.SearchStrategy[dict[str, Any]]:
    """A record holding any subset of its fields (empty, one, all), each with an odd or plain value."""
    values = VALUES[entity]
    return st.sets(st.sampled_from(sorted(values))).flatmap(
        lambda names: st.fixed_dictionaries({n: values[n] for n in sorted(names)})
    )


def rules_for(entity: EntityType) -> st.SearchStrategy[Rules]:
    names = sorted(VALUES[entity])
    return st.builds(
        Rules,
        direction_=st.sampled_from(
            [Direction.BOTH, Direction.APP_TO_QUICKBOOKS, Direction.QUICKBOOKS_TO_APP]
        ),
        conflict=st.sampled_from(list(ConflictPolicy)),
        field_directions=st.dictionaries(
            st.sampled_from(names), st.sampled_from(list(Direction)), max_size=3
        ),
        field_conflicts=st.dictionaries(
            st.sampled_from(names), st.sampled_from(list(ConflictPolicy)), max_size=3
        ),
        fill_empty_=st.booleans(),
    )


def state(fields: dict[str, Any], seq: int, minute: int) -> SideState:
    return SideState(
        external_id="1", version=Version(seq=seq, at=T0 + timedelta(minutes=minute)), fields=fields
    )


def same(name: str, a: Any, b: Any) -> bool:
    return normalize_value(name, a) == normalize_value(name, b)


def differs_from_base(name: str, base: dict[str, Any] | None, side: dict[str, Any]) -> bool:
    if base is None or name not in base:
        return True  # nothing agreed for it yet: whatever the side holds is news
    return not same(name, base[name], side.get(name))


def accounted(plan: Plan) -> dict[str, str]:
    """Each field the plan did something with, and what."""
    found = {name: "settled" for name in plan.settled}
    for write in plan.writes:
        found.update({name: f"written to {write.side}" for name in write.fields})
    found.update({c.field: "conflict" for c in plan.conflicts})
    return found


def apply(plan: Plan, base: dict[str, Any] | None, sides: dict[Side, dict[str, Any]]) -> dict[str, Any]:
    """The runner's bookkeeping, in memory: writes land on their side and, with settled values, in base."""
    new_base = {**(base or {}), **plan.settled}
    for write in plan.writes:
        assert write.kind is OpKind.UPDATE
        sides[write.side] = {**sides[write.side], **write.fields}
        new_base.update(write.fields)
    return new_base


def check(
    entity: EntityType, policy: Rules, base: dict[str, Any] | None, app: dict[str, Any], qbo: dict[str, Any]
) -> None:
    synced = directions(entity, policy)
    plan = reconcile(entity, base, state(app, 2, 1), state(qbo, 2, 2), policy, {})
    done = accounted(plan)
    for name in synced:
        by_app, by_qbo = differs_from_base(name, base, app), differs_from_base(name, base, qbo)
        if not (by_app or by_qbo):
            continue
        assert name in done, f"{name} changed (app: {by_app}, quickbooks: {by_qbo}) but the plan lost it"
        if same(name, app.get(name), qbo.get(name)):
            # A field QuickBooks must be sent with a changed one (one Line array) is settled, and sent.
            sent_along = name in WRITTEN_TOGETHER.get(entity, ()) and name in plan.settled
            assert done[name] == "settled" or sent_along, (
                f"{name} agrees on both sides yet the plan {done[name]}"
            )
    for conflict in plan.conflicts:
        assert synced[conflict.field] is Direction.BOTH
        assert policy.conflict_policy(entity, conflict.field) is ConflictPolicy.MANUAL
    sides = {Side.APP: dict(app), Side.QUICKBOOKS: dict(qbo)}
    new_base = apply(plan, base, sides)
    left = {n for n in synced if not same(n, sides[Side.APP].get(n), sides[Side.QUICKBOOKS].get(n))}
    assert left == {c.field for c in plan.conflicts}
    # Reconciling the applied result (our writes now in the ledger) plans no write: quiescent.
    ledger = {(w.side, 3): dict(w.fields) for w in plan.writes}
    seqs = {side: 3 if any(w.side is side for w in plan.writes) else 2 for side in Side}
    again = reconcile(
        entity,
        new_base,
        state(sides[Side.APP], seqs[Side.APP], 1),
        state(sides[Side.QUICKBOOKS], seqs[Side.QUICKBOOKS], 2),
        policy,
        ledger,
    )
    assert again.writes == ()


@RECONCILER_SETTINGS
@given(
    policy=rules_for(CUSTOMER),
    base=st.none() | partial(CUSTOMER),
    app=partial(CUSTOMER),
    qbo=partial(CUSTOMER),
)
def test_every_customer_field_changed_on_either_side_is_written_settled_or_in_conflict(
    policy: Rules, base: dict[str, Any] | None, app: dict[str, Any], qbo: dict[str, Any]
) -> None:
    check(CUSTOMER, policy, base, app, qbo)


@RECONCILER_SETTINGS
@given(
    policy=rules_for(INVOICE),
    base=st.none() | partial(INVOICE),
    app=partial(INVOICE),
    qbo=partial(INVOICE),
)
def test_every_invoice_field_changed_on_either_side_is_written_settled_or_in_conflict(
    policy: Rules, base: dict[str, Any] | None, app: dict[str, Any], qbo: dict[str, Any]
) -> None:
    check(INVOICE, policy, base, app, qbo)
