"""Sample values for tests: a fixed clock origin and change events of each kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from engine.model import ChangeEvent, EntityType, Operation, Side, Version

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CONNECTION = "c1"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def customer_event(
    external_id: str = "42",
    seq: int = 1,
    *,
    side: Side = Side.QUICKBOOKS,
    connection: str = CONNECTION,
    name: str = "Ada Lovelace",
    delete: bool = False,
) -> ChangeEvent:
    return ChangeEvent(
        side=side,
        connection=connection,
        entity=EntityType.CUSTOMER,
        external_id=external_id,
        version=Version(seq=seq, at=at(seq % 10_000)),
        observed_at=at(seq % 10_000),
        operation=Operation.DELETE if delete else Operation.UPSERT,
        fields={} if delete else {"display_name": name, "email": "ada@example.com"},
    )


def item_event(external_id: str = "7", seq: int = 1, price: str = "19.99") -> ChangeEvent:
    return ChangeEvent(
        side=Side.APP,
        connection=CONNECTION,
        entity=EntityType.ITEM,
        external_id=external_id,
        version=Version(seq=seq, at=at(seq)),
        observed_at=at(seq),
        fields={"name": "Consulting", "unit_price": Decimal(price)},
    )
