"""Table-driven reconciler cases: every policy, direction, same-value edits, echoes, deletes, dependencies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.model import EntityType, Side, Version, parse_record, record_fields
from engine.plan import ConflictPolicy, DeleteAction, Direction, OpKind
from engine.reconcile import DELETED_FIELD, SideState, reconcile
from tests.reconciler.rules import Rules

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CUSTOMER = EntityType.CUSTOMER
INVOICE = EntityType.INVOICE
APP, QBO = Side.APP, Side.QUICKBOOKS


def customer(**changes: Any) -> dict[str, Any]:
    base = {"display_name": "Amélie O'Brien", "email": "amelie@example.com", "phone": "555-010-2000"}
    return record_fields(parse_record(CUSTOMER, {**base, **changes}))


def invoice(**changes: Any) -> dict[str, Any]:
    base = {
        "customer": {"entity": "customer", "id": "L-cust"},
        "doc_number": "1001",
        "lines": [
            {"item": {"entity": "item", "id": "L-item"}, "quantity": "2", "unit_price": "50", "amount": "100"}
        ],
    }
    return record_fields(parse_record(INVOICE, {**base, **changes}))


def state(fields: dict[str, Any] | None, seq: int = 1, minutes: int = 0, ext: str = "1") -> SideState:
    return SideState(
        external_id=ext, version=Version(seq=seq, at=T0 + timedelta(minutes=minutes)), fields=fields
    )


DEFAULT_RULES = Rules()


def run(base, app, qbo, rules=DEFAULT_RULES, ledger=None, entity=CUSTOMER):  # type: ignore[no-untyped-def]
    return reconcile(entity, base, app, qbo, rules, ledger or {})


def writes_to(plan, side):  # type: ignore[no-untyped-def]
    return [w for w in plan.writes if w.side is side]


# --- creates -------------------------------------------------------------------------------------


def test_new_app_customer_is_created_in_quickbooks_with_every_synced_field():
    plan = run(None, state(customer()), None)
    (write,) = plan.writes
    assert write.side is QBO and write.kind is OpKind.CREATE
    assert write.fields["email"] == "amelie@example.com" and write.fields["display_name"] == "Amélie O'Brien"


def test_new_quickbooks_customer_is_created_in_the_app():
    plan = run(None, None, state(customer()))
    assert [(w.side, w.kind) for w in plan.writes] == [(APP, OpKind.CREATE)]


def test_one_way_entity_never_creates_on_its_source_side():
    rules = Rules(direction_=Direction.APP_TO_QUICKBOOKS)
    plan = run(None, None, state(customer()), rules)
    assert plan.writes == () and "do not flow" in plan.reasons[0]


def test_invoice_create_in_quickbooks_leaves_out_fields_quickbooks_computes():
    rules = Rules(direction_=Direction.APP_TO_QUICKBOOKS)
    plan = run(None, state(invoice(total="100", balance="100")), None, rules, entity=INVOICE)
    (write,) = plan.writes
    assert "total" not in write.fields and "balance" not in write.fields
    assert write.fields["doc_number"] == "1001"


def test_invoice_made_in_quickbooks_is_not_created_in_app_when_invoices_flow_app_to_quickbooks():
    rules = Rules(direction_=Direction.APP_TO_QUICKBOOKS)
    assert run(None, None, state(invoice(total="100")), rules, entity=INVOICE).writes == ()


def test_deleted_record_with_no_base_plans_nothing():
    assert run(None, state(None), None).empty


# --- one-sided and same-value changes ---------------------------------------------------------


@pytest.mark.parametrize("edited", [APP, QBO])
def test_a_field_changed_on_one_side_flows_to_the_other(edited: Side):
    base = customer()
    changed = state(customer(phone="555-999-0000"), seq=2)
    plan = run(base, changed, state(base)) if edited is APP else run(base, state(base), changed)
    (write,) = plan.writes
    assert write.side is edited.other and write.kind is OpKind.UPDATE
    assert write.fields == {"phone": "555-999-0000"}  # sparse: only what changed
    assert write.expected_seq == 1


def test_same_value_on_both_sides_is_no_conflict_and_settles_the_base():
    base = customer()
    plan = run(
        base, state(customer(email="new@example.com"), 2), state(customer(email="NEW@example.com "), 2)
    )
    assert plan.empty and plan.settled["email"] == "new@example.com"


@pytest.mark.parametrize(
    ("app_value", "qbo_value"),
    [
        ("amelie@example.com", " Amelie@Example.COM "),
        ("555-010-2000", "(555) 010 2000"),
    ],
)
def test_normalization_hides_formatting_differences(app_value: str, qbo_value: str):
    field = "email" if "@" in app_value else "phone"
    base = customer()
    assert run(base, state(customer(**{field: app_value})), state(customer(**{field: qbo_value}), 2)).empty


def test_money_scale_and_whitespace_are_not_changes():
    base = invoice()
    qbo = invoice(
        lines=[
            {
                "item": {"entity": "item", "id": "L-item"},
                "quantity": "2.000",
                "unit_price": "50.00",
                "amount": "100.00",
                "description": None,
            }
        ],
        doc_number=" 1001 ",
    )
    assert run(base, state(invoice()), state(qbo, 2), entity=INVOICE).empty


# --- conflicts ------------------------------------------------------------------------------------

BOTH_EDITED = (customer(email="app@example.com"), customer(email="qbo@example.com"))


@pytest.mark.parametrize(
    ("policy", "app_minutes", "qbo_minutes", "winner"),
    [
        (ConflictPolicy.APP_WINS, 0, 5, APP),
        (ConflictPolicy.QUICKBOOKS_WINS, 5, 0, QBO),
        (ConflictPolicy.NEWEST_WINS, 5, 0, APP),
        (ConflictPolicy.NEWEST_WINS, 0, 5, QBO),
        (ConflictPolicy.NEWEST_WINS, 3, 3, QBO),
    ],
)
def test_conflict_policies_pick_a_winner(
    policy: ConflictPolicy, app_minutes: int, qbo_minutes: int, winner: Side
):
    app_f, qbo_f = BOTH_EDITED
    plan = run(customer(), state(app_f, 2, app_minutes), state(qbo_f, 2, qbo_minutes), Rules(conflict=policy))
    (write,) = plan.writes
    assert write.side is winner.other
    assert write.fields["email"] == (app_f if winner is APP else qbo_f)["email"]
    assert plan.conflicts == ()


def ours(fields: dict[str, Any], seq: int, minutes: int, user_minutes: int | None) -> SideState:
    """A side whose current version is our own write (at `minutes`); a person last edited it at
    `user_minutes` (None: no version of a person's is held any more)."""
    user_at = None if user_minutes is None else T0 + timedelta(minutes=user_minutes)
    at = T0 + timedelta(minutes=minutes)
    return SideState(external_id="1", version=Version(seq=seq, at=at), fields=fields, user_at=user_at)


def test_newest_wins_goes_by_the_users_edits_not_by_our_later_write_on_one_side():
    # The fault campaign's lost update: the app user set the company at minute 0, the accountant
    # another one at minute 5, and our write of notes into the app at minute 9 made the app's
    # version the newest. It is not an edit of the company: the accountant's later value wins.
    base = customer(notes="from QuickBooks")
    app = ours(customer(company_name="app 28", notes="from QuickBooks"), 3, minutes=9, user_minutes=0)
    qbo = state(customer(company_name="qbo 44", notes="from QuickBooks"), seq=5, minutes=5)
    plan = run(base, app, qbo, ledger={(APP, 3): {"notes": "from QuickBooks"}})
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"company_name": "qbo 44"}


def test_newest_wins_goes_by_the_users_edits_when_our_write_is_the_newest_in_quickbooks():
    base = customer(notes="from the app")
    app = state(customer(company_name="app 28", notes="from the app"), seq=4, minutes=5)
    qbo = ours(customer(company_name="qbo 44", notes="from the app"), 7, minutes=9, user_minutes=0)
    plan = run(base, app, qbo, ledger={(QBO, 7): {"notes": "from the app"}})
    (write,) = plan.writes
    assert write.side is QBO and write.fields == {"company_name": "app 28"}


@pytest.mark.parametrize(
    ("app_user", "qbo_user", "winner"),
    [
        # No version of a person's is held on one side: its edit is older than all the other holds.
        (None, 0, QBO),
        (0, None, APP),
        # Known on neither side: a tie, and a tie goes to QuickBooks.
        (None, None, QBO),
    ],
)
def test_newest_wins_takes_an_edit_whose_time_is_no_longer_known_for_the_oldest(
    app_user: int | None, qbo_user: int | None, winner: Side
):
    app = ours(customer(company_name="app 28"), 3, minutes=9, user_minutes=app_user)
    qbo = ours(customer(company_name="qbo 44"), 5, minutes=9, user_minutes=qbo_user)
    ledger = {(APP, 3): {"notes": None}, (QBO, 5): {"notes": None}}
    plan = run(customer(), app, qbo, ledger=ledger)
    (write,) = plan.writes
    assert write.side is winner.other
    assert write.fields["company_name"] == ("app 28" if winner is APP else "qbo 44")


def test_newest_wins_dates_a_value_the_other_side_filled_in_for_our_write_at_that_write():
    # QuickBooks numbered the invoice our write created (minute 9); the app user had typed another
    # number at minute 5, before any person touched QuickBooks' copy.
    base = invoice(doc_number=None)
    app = state(invoice(doc_number="A-7"), seq=2, minutes=5)
    qbo = ours(invoice(doc_number="1042"), 0, minutes=9, user_minutes=None)
    ledger = {(QBO, 0): {k: v for k, v in base.items() if k not in ("total", "balance")}}
    rules = Rules(direction_=Direction.APP_TO_QUICKBOOKS, field_directions={"doc_number": Direction.BOTH})
    plan = run(base, app, qbo, rules=rules, ledger=ledger, entity=INVOICE)
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"doc_number": "1042"}


def test_manual_opens_a_conflict_for_that_field_only_and_other_fields_keep_syncing():
    rules = Rules(field_conflicts={"email": ConflictPolicy.MANUAL})
    app_f = customer(email="app@example.com", notes="VIP")
    qbo_f = customer(email="qbo@example.com")
    plan = run(customer(), state(app_f, 2), state(qbo_f, 2), rules)
    (conflict,) = plan.conflicts
    assert (conflict.field, conflict.base, conflict.app, conflict.quickbooks) == (
        "email",
        "amelie@example.com",
        "app@example.com",
        "qbo@example.com",
    )
    assert conflict.policy is ConflictPolicy.MANUAL
    (write,) = plan.writes
    assert write.side is QBO and write.fields == {"notes": "VIP"}


def test_records_matched_without_a_base_treat_every_difference_as_a_conflict():
    rules = Rules(conflict=ConflictPolicy.MANUAL)
    plan = run(None, state(customer(phone="1")), state(customer(phone="2")), rules)
    assert [c.field for c in plan.conflicts] == ["phone"] and plan.writes == ()


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_first_match_fills_a_field_empty_on_one_side_instead_of_opening_a_conflict(empty):
    rules = Rules(conflict=ConflictPolicy.MANUAL)
    plan = run(None, state(customer(notes="VIP")), state(customer(notes=empty)), rules)
    assert plan.conflicts == ()
    (write,) = plan.writes
    assert write.side is QBO and write.fields == {"notes": "VIP"}
    assert any("filled from app" in reason for reason in plan.reasons)


def test_first_match_fills_the_app_from_quickbooks_too_whatever_the_conflict_policy():
    rules = Rules(conflict=ConflictPolicy.APP_WINS)
    plan = run(None, state(customer(phone=None)), state(customer(phone="555-010-3000")), rules)
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"phone": "555-010-3000"}


def test_first_match_with_fill_empty_off_applies_the_conflict_policy_to_empty_fields():
    rules = Rules(conflict=ConflictPolicy.MANUAL, fill_empty_=False)
    plan = run(None, state(customer(notes="VIP")), state(customer(notes=None)), rules)
    assert [c.field for c in plan.conflicts] == ["notes"] and plan.writes == ()


def test_fill_empty_is_only_for_a_first_match_a_field_cleared_later_is_a_change():
    rules = Rules(conflict=ConflictPolicy.MANUAL)
    base = customer(notes="VIP")
    plan = run(base, state(customer(notes="VIP"), 2), state(customer(notes=None), 2), rules)
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"notes": None}


def test_an_edit_after_a_first_match_that_agreed_on_few_fields_is_still_written():
    # The match agreed on the name and little else: the base holds only what both sides agreed on.
    rules = Rules(conflict=ConflictPolicy.MANUAL)
    app_now = customer(display_name="Amélie O'Brien-Smith", email="a@app.example", phone="555-010-1111")
    qbo_now = customer(email="a@qbo.example", phone="555-010-2222", notes="books")
    base = {"display_name": "Amélie O'Brien", "active": True}
    plan = run(base, state(app_now, 2), state(qbo_now, 2), rules)
    (write,) = plan.writes
    assert write.side is QBO and write.fields == {"display_name": "Amélie O'Brien-Smith"}
    assert {c.field for c in plan.conflicts} == {"email", "phone", "notes"}


# --- directions ----------------------------------------------------------------------------------


def test_one_way_field_reverts_an_edit_on_its_target_side():
    rules = Rules(field_directions={"email": Direction.APP_TO_QUICKBOOKS})
    plan = run(customer(), state(customer()), state(customer(email="typo@example.com"), 2), rules)
    (write,) = plan.writes
    assert write.side is QBO and write.fields == {"email": "amelie@example.com"}


def test_one_way_field_never_writes_to_its_source():
    rules = Rules(field_directions={"email": Direction.APP_TO_QUICKBOOKS})
    plan = run(customer(), state(customer(email="a@x.io"), 2), state(customer(email="q@x.io"), 2), rules)
    assert writes_to(plan, APP) == []


def test_field_with_direction_none_is_not_synced():
    rules = Rules(field_directions={"notes": Direction.NONE})
    assert run(customer(), state(customer(notes="private"), 2), state(customer()), rules).empty


def test_invoice_total_and_balance_flow_from_quickbooks_to_the_app_only():
    rules = Rules(direction_=Direction.APP_TO_QUICKBOOKS)
    base = invoice(total="100", balance="100")
    plan = run(base, state(base), state(invoice(total="100", balance="40"), 3), rules, entity=INVOICE)
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"balance": Decimal("40.00")}


def test_an_app_edit_of_a_computed_field_is_overwritten_by_quickbooks_value():
    base = invoice(total="100", balance="100")
    plan = run(base, state(invoice(total="999", balance="100"), 2), state(base), entity=INVOICE)
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"total": Decimal("100.00")}


# --- echoes --------------------------------------------------------------------------------------


def test_our_own_write_coming_back_plans_nothing():
    base = customer()
    echoed = state(customer(phone="555-777-0000"), seq=2)
    ledger = {(QBO, 2): {"phone": "555-777-0000"}}
    assert run(base, state(base), echoed, ledger=ledger).empty


def test_fields_our_write_did_not_set_still_flow_from_the_echo():
    # We created the invoice in QuickBooks; the echo carries the total QuickBooks computed.
    base = invoice()
    ledger = {(QBO, 0): {k: v for k, v in base.items() if k not in ("total", "balance")}}
    plan = run(
        base,
        state(base),
        state(invoice(total="100", balance="100"), seq=0),
        ledger=ledger,
        rules=Rules(direction_=Direction.APP_TO_QUICKBOOKS),
        entity=INVOICE,
    )
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"balance": Decimal("100.00"), "total": Decimal("100.00")}


def test_a_user_edit_after_our_write_is_not_mistaken_for_an_echo():
    ledger = {(QBO, 2): {"phone": "555-777-0000"}}
    plan = run(customer(), state(customer()), state(customer(phone="555-123-4567"), seq=3), ledger=ledger)
    assert [w.side for w in plan.writes] == [APP]


# --- deletes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "make", "deleted_on", "kind"),
    [
        (CUSTOMER, customer, APP, OpKind.INACTIVATE),
        (EntityType.ITEM, None, APP, OpKind.INACTIVATE),
        (INVOICE, invoice, APP, OpKind.VOID),
        (INVOICE, invoice, QBO, OpKind.DELETE),
        (CUSTOMER, customer, QBO, OpKind.DELETE),
    ],
)
def test_deletes_propagate_per_entity(entity, make, deleted_on, kind):  # type: ignore[no-untyped-def]
    fields = make() if make else record_fields(parse_record(EntityType.ITEM, {"name": "Design"}))
    app = state(None if deleted_on is APP else fields, 2)
    qbo = state(None if deleted_on is QBO else fields, 2)
    plan = run(fields, app, qbo, entity=entity)
    (write,) = plan.writes
    assert (write.side, write.kind) == (deleted_on.other, kind)
    assert plan.tombstone
    if kind is OpKind.INACTIVATE:
        assert write.fields == {"active": False}


def test_customers_are_never_deleted_in_quickbooks():
    plan = run(customer(), state(None, 2), state(customer()))
    assert all(w.kind is not OpKind.DELETE for w in plan.writes if w.side is QBO)


def test_delete_with_ignore_keeps_the_other_copy_and_tombstones_the_link():
    plan = run(customer(), state(None, 2), state(customer()), Rules(on_delete=DeleteAction.IGNORE))
    assert plan.writes == () and plan.tombstone


def test_deleted_on_both_sides_is_a_tombstone():
    plan = run(customer(), state(None, 2), state(None, 3))
    assert plan.tombstone and plan.writes == ()


def test_delete_against_a_concurrent_edit_goes_to_the_conflict_queue():
    plan = run(customer(), state(None, 2), state(customer(phone="555-000-1111"), 2))
    assert [c.field for c in plan.conflicts] == [DELETED_FIELD] and plan.writes == ()


# --- dependencies --------------------------------------------------------------------------------


def test_an_invoice_waits_for_its_customer_to_be_linked():
    fields = invoice(customer={"entity": "customer", "id": "42", "side": "app"})
    plan = run(None, state(fields), None, entity=INVOICE)
    (wait,) = plan.waits
    assert plan.writes == () and wait.side is QBO
    assert (wait.depends_on.entity, wait.depends_on.id) == (CUSTOMER, "42")


def test_an_invoice_waits_for_its_items_to_be_linked():
    lines = [{"item": {"entity": "item", "id": "7", "side": "app"}, "amount": "5"}]
    plan = run(None, state(invoice(lines=lines)), None, entity=INVOICE)
    assert plan.waits[0].depends_on.entity is EntityType.ITEM


def test_a_payment_waits_for_its_invoices():
    payment = record_fields(
        parse_record(
            EntityType.PAYMENT,
            {
                "customer": {"entity": "customer", "id": "L-c"},
                "total": "40",
                "applications": [
                    {"invoice": {"entity": "invoice", "id": "9", "side": "quickbooks"}, "amount": "40"}
                ],
            },
        )
    )
    plan = run(None, None, state(payment), entity=EntityType.PAYMENT)
    assert plan.waits[0].depends_on.entity is INVOICE and plan.waits[0].side is APP


def test_an_invoice_whose_references_are_linked_is_created():
    plan = run(None, state(invoice()), None, entity=INVOICE)
    assert [w.kind for w in plan.writes] == [OpKind.CREATE] and plan.waits == ()


def test_a_value_the_other_side_filled_in_for_our_write_flows_back_where_it_may():
    # We created the invoice without a due date; QuickBooks filled one from the customer's terms.
    rules = Rules(direction_=Direction.APP_TO_QUICKBOOKS, field_directions={"due_date": Direction.BOTH})
    sent = invoice()
    filled = invoice(due_date="2026-12-01")
    ledger = {(QBO, 0): dict(sent)}
    plan = run(sent, state(sent), state(filled, seq=0), rules, ledger=ledger, entity=INVOICE)
    (write,) = plan.writes
    assert write.side is APP and write.fields == {"due_date": date(2026, 12, 1)}


def test_a_one_way_value_the_other_side_filled_in_is_left_alone():
    rules = Rules(direction_=Direction.APP_TO_QUICKBOOKS)
    sent, filled = invoice(), invoice(due_date="2026-12-01")
    plan = run(sent, state(sent), state(filled, seq=0), rules, ledger={(QBO, 0): dict(sent)}, entity=INVOICE)
    assert plan.writes == ()  # re-sending "no due date" would only make QuickBooks fill it again
