"""`QboConnector.write_many` on the emulator: every entity and every kind of write in /batch requests,
each answered as its single write would be (the write's answer is the new state: no read-back)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from connectors.quickbooks.connector import QboConnector
from connectors.quickbooks.emulator.server import EmulatorHandle
from connectors.quickbooks.mapping import MappingContext
from engine.errors import NotFoundError
from engine.model import EntityType, Side
from engine.plan import Op, OpKind
from engine.ports import StateStore, WriteResult
from policies import PolicySet
from tests.quickbooks.conftest import Rig
from tests.support.sample import CUSTOMERS, ITEMS, invoice_for

C, ITEM, INV, PAY = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT


@pytest.fixture
def connector(qbo: EmulatorHandle, sqlite_store: StateStore) -> Iterator[QboConnector]:
    with ExitStack() as stack:
        rig = Rig(qbo, sqlite_store, stack, batch_writes=True)
        rig.connect("c1")
        yield QboConnector(
            rig.client("c1"), MappingContext(income_account="1"), PolicySet.default(), rig.clock, "c1"
        )


def op(
    entity: EntityType,
    kind: OpKind,
    fields: dict[str, Any],
    external_id: str | None = None,
    seq: int | None = None,
) -> Op:
    return Op(
        op_id=uuid.uuid4().hex,
        connection="c1",
        link_id=uuid.uuid4().hex,
        entity=entity,
        side=Side.QUICKBOOKS,
        kind=kind,
        fields=fields,
        external_id=external_id,
        expected_seq=seq,
        reason="test",
    )


def on_quickbooks(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with every reference as the connector gets it: a QuickBooks id (the engine resolves them)."""
    if isinstance(fields, dict):
        if set(fields) >= {"entity", "id"}:
            return {**fields, "side": Side.QUICKBOOKS}
        return {k: on_quickbooks(v) for k, v in fields.items()}
    if isinstance(fields, list):
        return [on_quickbooks(v) for v in fields]
    return fields


def written(results: list[WriteResult | Exception]) -> list[WriteResult]:
    assert all(isinstance(r, WriteResult) for r in results), results
    return [r for r in results if isinstance(r, WriteResult)]


def endpoints(qbo: EmulatorHandle) -> dict[str, int]:
    return dict(qbo.request_log()["by_endpoint"])


def test_creates_updates_voids_inactivations_and_deletes_of_all_four_entities_go_in_batches(
    connector: QboConnector, qbo: EmulatorHandle
) -> None:
    qbo.clear_request_log()
    first = written(
        connector.write_many(
            [op(C, OpKind.CREATE, dict(c)) for c in CUSTOMERS]
            + [op(ITEM, OpKind.CREATE, dict(i)) for i in ITEMS]
        )
    )
    (amelie, nunez), (design, kit) = first[:2], first[2:]
    assert amelie.fields["display_name"] == "Amélie O'Brien" and kit.fields["name"] == "Pipe fitting kit"

    invoice = on_quickbooks(invoice_for(amelie.external_id, (design.external_id, kit.external_id)))
    second = {
        **invoice,
        "doc_number": "A-1002",
        "customer": on_quickbooks({"entity": C, "id": nunez.external_id}),
    }
    inv1, inv2 = written(
        connector.write_many([op(INV, OpKind.CREATE, invoice), op(INV, OpKind.CREATE, second)])
    )
    assert str(inv1.fields["total"]) == "339.98", "QuickBooks computed the total: it came back in the answer"

    payment = on_quickbooks(
        {
            "customer": {"entity": C, "id": amelie.external_id},
            "txn_date": "2026-11-10",
            "total": "100.00",
            "applications": [{"invoice": {"entity": INV, "id": inv1.external_id}, "amount": "100.00"}],
        }
    )
    rename = op(C, OpKind.UPDATE, {"email": "new@obrien.example"}, amelie.external_id, seq=0)
    (paid, renamed) = written(connector.write_many([op(PAY, OpKind.CREATE, payment), rename]))
    assert renamed.fields["email"] == "new@obrien.example" and renamed.version.seq == 1

    last = [
        op(ITEM, OpKind.INACTIVATE, {}, kit.external_id, seq=0),
        op(INV, OpKind.VOID, {}, inv2.external_id, seq=0),
        op(PAY, OpKind.DELETE, {}, paid.external_id, seq=0),
        op(C, OpKind.UPDATE, {"phone": "555-010-9999"}, nunez.external_id),  # no version: read first
    ]
    inactive, voided, deleted, phoned = written(connector.write_many(last))
    assert inactive.fields["active"] is False
    assert str(voided.fields["total"]) == "0.00" or float(voided.fields["total"]) == 0
    assert deleted.deleted and deleted.external_id == paid.external_id
    assert phoned.fields["phone"] == "555-010-9999"
    assert qbo.emulator.store.get("Payment", paid.external_id) is None
    assert qbo.emulator.store.get("Item", kit.external_id).data["Active"] is False

    calls = endpoints(qbo)
    assert calls["batch"] == 4, calls
    assert not [e for e in calls if e.startswith("POST ") and e != "POST batch"], calls
    # The one op planned without a version read its SyncToken first; nothing was read after a write.
    assert [e for e in calls if e.startswith("GET ")] == ["GET customer"] and calls["GET customer"] == 1


def test_a_rename_into_a_taken_name_and_a_gone_record_are_settled_alone_and_the_rest_of_the_batch_is_written(
    connector: QboConnector, qbo: EmulatorHandle
) -> None:
    holder = qbo.create_record("Customer", {"DisplayName": "Taken Name"})
    mine = qbo.create_record("Customer", {"DisplayName": "Mine"})
    other = qbo.create_record("Customer", {"DisplayName": "Other"})
    suffixed, fine, missing = connector.write_many(
        [
            op(C, OpKind.UPDATE, {"display_name": "Taken Name"}, mine["Id"], seq=0),
            op(C, OpKind.UPDATE, {"email": "o@example.test"}, other["Id"], seq=0),
            op(C, OpKind.UPDATE, {"email": "x@example.test"}, "99999", seq=0),
        ]
    )
    # The taken name went the single way, under the customers' policy (suffix): the next free name.
    assert isinstance(suffixed, WriteResult) and suffixed.fields["display_name"] == "Taken Name (2)"
    assert qbo.emulator.store.get("Customer", holder["Id"]).data["DisplayName"] == "Taken Name"
    assert isinstance(fine, WriteResult) and fine.fields["email"] == "o@example.test"
    assert isinstance(missing, NotFoundError), "a 610 on the target itself: it is gone"
    assert qbo.emulator.store.get("Customer", mine["Id"]).data["DisplayName"] == "Taken Name (2)"
