"""Fixtures for the fake connector tests: a fake clock and one fake per side."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.fakes import FakeConnector
from engine.model import EntityType, Ref, Side
from engine.plan import Op, OpKind

T0 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def app(clock: FakeClock) -> FakeConnector:
    return FakeConnector(Side.APP, "c1", clock, page_size=3)


@pytest.fixture
def qbo(clock: FakeClock) -> FakeConnector:
    return FakeConnector(Side.QUICKBOOKS, "c1", clock, computes_totals=True, page_size=3)


def ref(entity: EntityType, external_id: str, side: Side | None = None) -> Ref:
    return Ref(entity=entity, id=external_id, side=side)


def op(
    connector: FakeConnector,
    entity: EntityType,
    kind: OpKind,
    fields: dict[str, Any] | None = None,
    *,
    external_id: str | None = None,
    expected_seq: int | None = None,
    op_id: str = "op-1",
) -> Op:
    return Op(
        op_id=op_id,
        connection="c1",
        link_id="link-1",
        entity=entity,
        side=connector.side,
        kind=kind,
        external_id=external_id,
        fields=fields or {},
        expected_seq=expected_seq,
        reason="test",
    )


def seed_invoice(connector: FakeConnector, *amounts: str) -> str:
    """A customer, an item and an invoice with one line per amount; returns the invoice id."""
    customer = connector.create(EntityType.CUSTOMER, {"display_name": "Acme"})
    item = connector.create(EntityType.ITEM, {"name": "Consulting"})
    lines = [{"item": ref(EntityType.ITEM, item), "amount": Decimal(a)} for a in amounts]
    return connector.create(
        EntityType.INVOICE, {"customer": ref(EntityType.CUSTOMER, customer), "lines": lines}
    )


def pay(connector: FakeConnector, customer: str, *applications: tuple[str, str]) -> str:
    apps = [
        {"invoice": ref(EntityType.INVOICE, inv), "amount": Decimal(amount)} for inv, amount in applications
    ]
    total = sum((Decimal(amount) for _, amount in applications), Decimal("0.00"))
    fields = {"customer": ref(EntityType.CUSTOMER, customer), "total": total, "applications": apps}
    return connector.create(EntityType.PAYMENT, fields)
