"""The fake's reference rule: refs name live records of the right entity on this side."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import RecordRejectedError
from engine.fakes import FakeConnector
from engine.model import EntityType, Side
from engine.plan import OpKind

from .conftest import op, ref


def invoice_fields(customer: object, item: object = None) -> dict[str, object]:
    line: dict[str, object] = {"amount": Decimal("5.00")}
    if item is not None:
        line["item"] = item
    return {"customer": customer, "lines": [line]}


def test_an_unsided_ref_is_read_as_this_sides_id_and_stored_sided(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    result = app.write(
        op(app, EntityType.INVOICE, OpKind.CREATE, invoice_fields(ref(EntityType.CUSTOMER, cid)))
    )
    assert result.fields["customer"] == {"entity": EntityType.CUSTOMER, "id": cid, "side": Side.APP}


@pytest.mark.parametrize(
    ("customer_ref", "why"),
    [
        (ref(EntityType.CUSTOMER, "99"), "unknown id"),
        (ref(EntityType.CUSTOMER, "1", Side.QUICKBOOKS), "the other side's id"),
        (ref(EntityType.ITEM, "2"), "the wrong entity"),
        (ref(EntityType.CUSTOMER, "2"), "an id of another entity"),
    ],
)
def test_bad_references_are_rejected(app: FakeConnector, customer_ref: object, why: str) -> None:
    app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    app.create(EntityType.ITEM, {"name": "Consulting"})
    with pytest.raises(RecordRejectedError) as caught:
        app.write(op(app, EntityType.INVOICE, OpKind.CREATE, invoice_fields(customer_ref)))
    assert caught.value.code == "invalid_reference", why
    assert app.all(EntityType.INVOICE) == {}


def test_a_deleted_record_cannot_be_referenced(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    app.delete(EntityType.CUSTOMER, cid)
    with pytest.raises(RecordRejectedError):
        app.create(EntityType.INVOICE, invoice_fields(ref(EntityType.CUSTOMER, cid)))


def test_an_inactive_record_can_be_referenced(qbo: FakeConnector) -> None:
    cid = qbo.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    qbo.edit(EntityType.CUSTOMER, cid, active=False)
    assert qbo.create(EntityType.INVOICE, invoice_fields(ref(EntityType.CUSTOMER, cid)))


def test_line_items_are_checked(qbo: FakeConnector) -> None:
    cid = qbo.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    with pytest.raises(RecordRejectedError):
        qbo.create(
            EntityType.INVOICE, invoice_fields(ref(EntityType.CUSTOMER, cid), ref(EntityType.ITEM, "77"))
        )


def test_a_sparse_update_checks_only_the_references_it_sends(app: FakeConnector) -> None:
    acme = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    iid = app.create(EntityType.INVOICE, invoice_fields(ref(EntityType.CUSTOMER, acme)))
    app.delete(EntityType.CUSTOMER, acme)
    result = app.write(op(app, EntityType.INVOICE, OpKind.UPDATE, {"private_note": "kept"}, external_id=iid))
    assert result.fields["private_note"] == "kept"
    with pytest.raises(RecordRejectedError):
        app.write(
            op(
                app,
                EntityType.INVOICE,
                OpKind.UPDATE,
                {"customer": ref(EntityType.CUSTOMER, acme)},
                external_id=iid,
                op_id="op-2",
            )
        )


def test_payment_applications_must_name_live_invoices(qbo: FakeConnector) -> None:
    cid = qbo.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    fields = {
        "customer": ref(EntityType.CUSTOMER, cid),
        "total": Decimal("5.00"),
        "applications": [{"invoice": ref(EntityType.INVOICE, "12"), "amount": Decimal("5.00")}],
    }
    with pytest.raises(RecordRejectedError):
        qbo.create(EntityType.PAYMENT, fields)
