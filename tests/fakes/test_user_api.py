"""The fake's user API: a person creating, editing and deleting records on one side."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.clock import FakeClock
from engine.errors import NotFoundError, RecordRejectedError
from engine.fakes import FakeConnector
from engine.model import EntityType, Operation, Ref, Side

from .conftest import T0, seed_invoice


def test_ids_are_sequential_per_connector(app: FakeConnector) -> None:
    ids = [
        app.create(EntityType.CUSTOMER, {"display_name": "Acme"}),
        app.create(EntityType.ITEM, {"name": "Consulting"}),
        app.create(EntityType.CUSTOMER, {"display_name": "Globex"}),
    ]
    assert ids == ["1", "2", "3"]


def test_seq_starts_at_zero_and_every_edit_moves_it_and_its_time(
    app: FakeConnector, clock: FakeClock
) -> None:
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    assert app.version(EntityType.CUSTOMER, cid).seq == 0
    assert app.version(EntityType.CUSTOMER, cid).at == T0
    clock.advance(60)
    version = app.edit(EntityType.CUSTOMER, cid, email="ap@acme.test")
    assert version.seq == 1
    assert version.at == T0 + timedelta(seconds=60)
    assert app.edit(EntityType.CUSTOMER, cid, phone="555").seq == 2


def test_edit_merges_into_the_record(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme", "email": "a@acme.test"})
    app.edit(EntityType.CUSTOMER, cid, phone="555")
    fields = app.get(EntityType.CUSTOMER, cid)
    assert fields is not None
    assert (fields["display_name"], fields["email"], fields["phone"]) == ("Acme", "a@acme.test", "555")


def test_get_returns_a_copy(app: FakeConnector) -> None:
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    fields = app.get(EntityType.CUSTOMER, cid)
    assert fields is not None
    fields["display_name"] = "Changed behind its back"
    assert (app.get(EntityType.CUSTOMER, cid) or {})["display_name"] == "Acme"


def test_invalid_fields_are_rejected(app: FakeConnector) -> None:
    with pytest.raises(RecordRejectedError) as caught:
        app.create(EntityType.CUSTOMER, {"display_name": ""})
    assert caught.value.code == "invalid"
    cid = app.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    with pytest.raises(RecordRejectedError):
        app.edit(EntityType.CUSTOMER, cid, no_such_field=1)


def test_delete_hides_the_record_but_keeps_its_version(app: FakeConnector) -> None:
    keep = app.create(EntityType.CUSTOMER, {"display_name": "Keep"})
    gone = app.create(EntityType.CUSTOMER, {"display_name": "Gone"})
    assert app.delete(EntityType.CUSTOMER, gone).seq == 1
    assert app.get(EntityType.CUSTOMER, gone) is None
    assert app.is_deleted(EntityType.CUSTOMER, gone)
    assert list(app.all(EntityType.CUSTOMER)) == [keep]
    assert app.version(EntityType.CUSTOMER, gone).seq == 1
    assert app.fetch(EntityType.CUSTOMER, gone).operation is Operation.DELETE
    with pytest.raises(NotFoundError):
        app.edit(EntityType.CUSTOMER, gone, notes="too late")


def test_quickbooks_users_cannot_delete_customers_only_inactivate(qbo: FakeConnector) -> None:
    cid = qbo.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    with pytest.raises(RecordRejectedError):
        qbo.delete(EntityType.CUSTOMER, cid)
    qbo.edit(EntityType.CUSTOMER, cid, active=False)
    assert qbo.all(EntityType.CUSTOMER)[cid]["active"] is False


def test_unknown_ids_raise_not_found(app: FakeConnector) -> None:
    assert app.get(EntityType.CUSTOMER, "42") is None
    with pytest.raises(NotFoundError):
        app.version(EntityType.CUSTOMER, "42")
    with pytest.raises(NotFoundError):
        app.edit(EntityType.CUSTOMER, "42", notes="x")


def test_void_by_a_user_zeroes_amounts_and_notes_it(app: FakeConnector) -> None:
    iid = seed_invoice(app, "12.00")
    app.edit(EntityType.INVOICE, iid, total="12.00", balance="12.00")
    app.void(EntityType.INVOICE, iid)
    invoice = app.get(EntityType.INVOICE, iid)
    assert invoice is not None
    assert [line["amount"] for line in invoice["lines"]] == [0]
    assert (invoice["total"], invoice["balance"], invoice["private_note"]) == (0, 0, "Voided")


def test_the_two_sides_are_independent(app: FakeConnector, qbo: FakeConnector) -> None:
    app.create(EntityType.CUSTOMER, {"display_name": "Only in the app"})
    assert qbo.all(EntityType.CUSTOMER) == {}
    assert app.side is Side.APP
    assert qbo.side is Side.QUICKBOOKS


def test_page_size_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="page_size"):
        FakeConnector(Side.APP, "c1", clock, page_size=0)


def test_user_edits_check_references_too(app: FakeConnector) -> None:
    with pytest.raises(RecordRejectedError):
        app.create(
            EntityType.INVOICE,
            {"customer": Ref(entity=EntityType.CUSTOMER, id="7"), "lines": [{"amount": "1"}]},
        )
