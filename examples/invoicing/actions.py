"""What a user of the example app does, as plain functions: add a customer or an invoice, read a row.

The demo and the tests act through these, the way the app's own screens would write its tables.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from connectors.app.codec import Codec
from connectors.app.database import make_engine
from connectors.app.fields import Kind


def _insert(conn: sa.Connection, name: str, values: dict[str, Any]) -> int:
    table = sa.table(name, *(sa.column(c) for c in [*values, "id"]))
    return int(conn.execute(sa.insert(table).values(values).returning(table.c.id)).scalar_one())


def _stamped(codec: Codec, values: dict[str, Any]) -> dict[str, Any]:
    return {
        **values,
        "version": 1,
        "updated_at": codec.write_timestamp(datetime.now(UTC)),
        "changed_by": "user",
    }


def add_customer(url: str, **values: Any) -> int:
    """Insert a customer as the app's "new customer" screen does; returns its id."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            return _insert(conn, "customers", _stamped(Codec(engine.dialect.name), values))
    finally:
        engine.dispose()


def add_invoice(url: str, customer_id: int, number: str, lines: list[dict[str, Any]], issued_on: date) -> int:
    """Insert an invoice and its lines (amount = quantity x unit price) in one transaction; its id."""
    engine = make_engine(url)
    codec = Codec(engine.dialect.name)
    try:
        with engine.begin() as conn:
            header = {
                "customer_id": customer_id,
                "number": number,
                "issued_on": codec.write(Kind.DATE, issued_on),
            }
            invoice_id = _insert(conn, "invoices", _stamped(codec, header))
            for position, line in enumerate(lines, start=1):
                quantity, price = Decimal(str(line["quantity"])), Decimal(str(line["unit_price"]))
                _insert(
                    conn,
                    "invoice_lines",
                    {
                        "invoice_id": invoice_id,
                        "position": position,
                        "item_id": line.get("item_id"),
                        "description": line.get("description"),
                        "quantity": codec.write(Kind.DECIMAL, quantity),
                        "unit_price": codec.write(Kind.MONEY, price),
                        "amount": codec.write(Kind.MONEY, (quantity * price).quantize(Decimal("0.01"))),
                        "taxable": codec.write(Kind.BOOL, line.get("taxable", False)),
                    },
                )
        return invoice_id
    finally:
        engine.dispose()


def row(url: str, table: str, record_id: int) -> dict[str, Any] | None:
    """One row of the app's database, as a dict."""
    engine = make_engine(url)
    try:
        reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            found = conn.execute(sa.select(reflected).where(reflected.c.id == record_id)).mappings().first()
        return dict(found) if found else None
    finally:
        engine.dispose()
