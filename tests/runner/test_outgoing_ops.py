"""Ops made ready for their target side in sets agree with one-at-a-time `outgoing_op`."""

from __future__ import annotations

import pytest

from engine.apply import outgoing_op, outgoing_ops
from engine.model import EntityType, Side
from engine.plan import Op, OpKind
from engine.refs import UnlinkedReferenceError
from engine.state import Link
from engine.store import SqlStateStore
from tests.support.samples import CONNECTION
from tests.support.stores import store  # noqa: F401 - a fixture


def ref(link_id: str) -> dict[str, object]:
    return {"entity": EntityType.CUSTOMER, "id": link_id, "side": None}


def test_refs_and_ids_are_translated_as_one_at_a_time(store: SqlStateStore):  # noqa: F811
    links = [
        Link(id="both", connection=CONNECTION, entity=EntityType.CUSTOMER, app_id="a1", quickbooks_id="q1"),
        Link(id="app-only", connection=CONNECTION, entity=EntityType.CUSTOMER, app_id="a2"),
        Link(id="inv", connection=CONNECTION, entity=EntityType.INVOICE, app_id="i1", quickbooks_id="qi1"),
        Link(id="inv2", connection=CONNECTION, entity=EntityType.INVOICE, app_id="i2"),
    ]
    ops = [
        Op(
            op_id="update",
            connection=CONNECTION,
            link_id="inv",
            entity=EntityType.INVOICE,
            side=Side.QUICKBOOKS,
            kind=OpKind.UPDATE,
            external_id=None,
            fields={"customer": ref("both"), "memo": "m"},
            reason="test",
        ),
        Op(
            op_id="unlinked",
            connection=CONNECTION,
            link_id="inv2",
            entity=EntityType.INVOICE,
            side=Side.QUICKBOOKS,
            kind=OpKind.CREATE,
            fields={"customer": ref("app-only")},
            reason="test",
        ),
        Op(
            op_id="to-app",
            connection=CONNECTION,
            link_id="inv",
            entity=EntityType.INVOICE,
            side=Side.APP,
            kind=OpKind.UPDATE,
            fields={"customer": ref("app-only"), "lines": ({"item": None, "amount": "1.00"},)},
            reason="test",
        ),
    ]
    with store.session() as s:
        s.create_links(links)
        ready = outgoing_ops(s, ops)
        for op in ops:
            if op.op_id == "unlinked":
                with pytest.raises(UnlinkedReferenceError):
                    outgoing_op(s, op)
                assert isinstance(ready[op.op_id], UnlinkedReferenceError)
            else:
                assert ready[op.op_id] == outgoing_op(s, op)
    assert ready["update"].external_id == "qi1"  # type: ignore[union-attr]
    assert ready["update"].fields["customer"]["id"] == "q1"  # type: ignore[union-attr]
    assert ready["to-app"].fields["customer"]["id"] == "a2"  # type: ignore[union-attr]
