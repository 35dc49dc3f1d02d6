"""The QuickBooks-playing fake computes invoice totals and balances, as QuickBooks does."""

from __future__ import annotations

from decimal import Decimal

from engine.fakes import FakeConnector
from engine.model import EntityType, Operation
from engine.plan import OpKind

from .conftest import op, pay, ref, seed_invoice

D = Decimal


def totals(connector: FakeConnector, invoice_id: str) -> tuple[Decimal | None, Decimal | None]:
    invoice = connector.get(EntityType.INVOICE, invoice_id)
    assert invoice is not None
    return invoice["total"], invoice["balance"]


def test_total_is_the_sum_of_lines_and_sent_totals_are_ignored(qbo: FakeConnector) -> None:
    iid = seed_invoice(qbo, "40.00", "2.50")
    assert totals(qbo, iid) == (D("42.50"), D("42.50"))
    result = qbo.write(
        op(
            qbo,
            EntityType.INVOICE,
            OpKind.UPDATE,
            {"total": D("1.00"), "balance": D("0.00")},
            external_id=iid,
        )
    )
    assert (result.fields["total"], result.fields["balance"]) == (D("42.50"), D("42.50"))


def test_editing_lines_recomputes_the_total(qbo: FakeConnector) -> None:
    iid = seed_invoice(qbo, "40.00")
    qbo.edit(EntityType.INVOICE, iid, lines=[{"amount": D("10.00")}, {"amount": D("5.00")}])
    assert totals(qbo, iid) == (D("15.00"), D("15.00"))


def test_a_payment_lowers_the_balance_and_makes_a_new_invoice_version(qbo: FakeConnector) -> None:
    iid = seed_invoice(qbo, "100.00")
    before = qbo.read_changes(EntityType.INVOICE, None)
    seq = qbo.version(EntityType.INVOICE, iid).seq
    pay(qbo, "1", (iid, "30.00"))
    assert totals(qbo, iid) == (D("100.00"), D("70.00"))
    assert qbo.version(EntityType.INVOICE, iid).seq == seq + 1
    (event,) = qbo.read_changes(EntityType.INVOICE, before.cursor).events
    assert (event.external_id, event.fields["balance"]) == (iid, D("70.00"))


def test_editing_moving_and_deleting_payments_rebalance_every_invoice_touched(qbo: FakeConnector) -> None:
    first = seed_invoice(qbo, "100.00")
    second = qbo.create(
        EntityType.INVOICE, {"customer": ref(EntityType.CUSTOMER, "1"), "lines": [{"amount": D("50.00")}]}
    )
    pid = pay(qbo, "1", (first, "30.00"))
    qbo.edit(
        EntityType.PAYMENT,
        pid,
        applications=[{"invoice": ref(EntityType.INVOICE, second), "amount": "20.00"}],
    )
    assert totals(qbo, first) == (D("100.00"), D("100.00"))
    assert totals(qbo, second) == (D("50.00"), D("30.00"))
    qbo.delete(EntityType.PAYMENT, pid)
    assert totals(qbo, second) == (D("50.00"), D("50.00"))


def test_a_payment_write_through_the_port_rebalances_too(qbo: FakeConnector) -> None:
    iid = seed_invoice(qbo, "80.00")
    fields = {
        "customer": ref(EntityType.CUSTOMER, "1"),
        "total": D("80.00"),
        "applications": [{"invoice": ref(EntityType.INVOICE, iid), "amount": D("80.00")}],
    }
    qbo.write(op(qbo, EntityType.PAYMENT, OpKind.CREATE, fields))
    assert totals(qbo, iid) == (D("80.00"), D("0.00"))
    assert qbo.writes == 1, "the invoice's new balance is QuickBooks' doing, not a write"


def test_voids_zero_the_invoice_and_give_back_the_payment(qbo: FakeConnector) -> None:
    paid = seed_invoice(qbo, "60.00")
    pid = pay(qbo, "1", (paid, "60.00"))
    result = qbo.write(op(qbo, EntityType.PAYMENT, OpKind.VOID, external_id=pid))
    assert (result.fields["total"], result.deleted) == (D("0.00"), False)  # voided, still there
    assert (qbo.get(EntityType.PAYMENT, pid) or {})["total"] == D("0.00")
    assert totals(qbo, paid) == (D("60.00"), D("60.00"))
    qbo.void(EntityType.INVOICE, paid)
    assert totals(qbo, paid) == (D("0.00"), D("0.00"))
    qbo.edit(EntityType.INVOICE, paid, private_note="still void")
    assert totals(qbo, paid) == (D("0.00"), D("0.00"))


def test_deleting_an_invoice_with_a_payment_on_it_leaves_the_payment(qbo: FakeConnector) -> None:
    iid = seed_invoice(qbo, "10.00")
    pid = pay(qbo, "1", (iid, "10.00"))
    qbo.delete(EntityType.INVOICE, iid)
    assert qbo.fetch(EntityType.INVOICE, iid).operation is Operation.DELETE
    assert qbo.fetch(EntityType.PAYMENT, pid).operation is Operation.UPSERT


def test_the_app_side_stores_totals_as_given(app: FakeConnector) -> None:
    iid = seed_invoice(app, "40.00")
    assert totals(app, iid) == (None, None)
    app.edit(EntityType.INVOICE, iid, total="40.00", balance="12.00")
    pay(app, "1", (iid, "5.00"))
    assert totals(app, iid) == (D("40.00"), D("12.00"))
