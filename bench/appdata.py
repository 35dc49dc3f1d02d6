"""Fill the example app's tables in bulk: a mix of customers, items, invoices and payments, inserted as
the app would write them (version 1, changed_by 'user'), many rows per statement.

The mix of a backfill of N records: 30% customers, 10% items, 40% invoices (two lines each, on two
items), 20% payments (each paying one invoice in full).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from connectors.app.codec import Codec
from connectors.app.database import make_engine
from connectors.app.fields import Kind

CHUNK = 2_000


@dataclass(frozen=True)
class Mix:
    customers: int
    items: int
    invoices: int
    payments: int

    @property
    def total(self) -> int:
        return self.customers + self.items + self.invoices + self.payments

    @classmethod
    def of(cls, records: int) -> Mix:
        customers, items = max(1, records * 3 // 10), max(2, records // 10)
        payments = records // 5
        return cls(customers, items, max(payments, records - customers - items - payments), payments)

    def counts(self) -> dict[str, int]:
        return {
            "customer": self.customers,
            "item": self.items,
            "invoice": self.invoices,
            "payment": self.payments,
        }


def insert_sql(table: str, columns: list[str]) -> sa.TextClause:
    """INSERT INTO table (columns) VALUES (:columns...), for executemany."""
    names, params = ", ".join(columns), ", ".join(":" + c for c in columns)
    return sa.text(f"INSERT INTO {table} ({names}) VALUES ({params})")


def _insert(conn: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        conn.execute(insert_sql(table, list(chunk[0])), chunk)


def _advance_sequences(conn: sa.Connection, tables: list[str]) -> None:
    """PostgreSQL identity columns do not see explicit ids: move them past what was inserted."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        conn.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 1)) FROM {table}"
        )


def customer_row(codec: Codec, n: int, name: str, stamp: Any) -> dict[str, Any]:
    return {
        "id": n,
        "display_name": name,
        "first_name": "Åsa",
        "last_name": f"Lindqvist {n}",
        "email": f"customer{n}@bench.example",
        "phone": f"555-01{n % 100:02d}-{n % 10000:04d}",
        "address_line1": f"{n} Rue de la Paix",
        "city": "Montréal",
        "region": "QC",
        "postal_code": "H2X 1Y4",
        "country": "Canada",
        "active": codec.write(Kind.BOOL, True),
        "version": 1,
        "updated_at": stamp,
        "changed_by": "user",
    }


def insert_mix(url: str, mix: Mix, at: datetime | None = None, spread: timedelta = timedelta(0)) -> None:
    """The whole mix, ids from 1 in each table; the app's timestamps are `at` (default: now), or, with a
    `spread`, from `at` to `at + spread`, row n of a table of N at n/N of the way (books kept over time)."""
    engine = make_engine(url)
    codec = Codec(engine.dialect.name)
    start = at or datetime.now(UTC)
    stamp = codec.write_timestamp(start)

    def kept_at(n: int, count: int) -> dict[str, Any]:
        when = codec.write_timestamp(start + spread * n / max(count, 1)) if spread else stamp
        return {"version": 1, "updated_at": when, "changed_by": "user"}

    def money(value: Any) -> Any:
        return codec.write(Kind.MONEY, Decimal(value))

    try:
        with engine.begin() as conn:
            _insert(
                conn,
                "customers",
                [
                    customer_row(codec, n, f"Customer {n:06d}", kept_at(n, mix.customers)["updated_at"])
                    for n in range(1, mix.customers + 1)
                ],
            )
            items = [
                {
                    "id": n,
                    "name": f"Item {n:05d}",
                    "kind": "service" if n % 2 else "non_inventory",
                    "description": f"Bench item {n}",
                    "price": money(f"{10 + n % 90}.50"),
                    "taxable": codec.write(Kind.BOOL, n % 2 == 0),
                    "active": codec.write(Kind.BOOL, True),
                    **kept_at(n, mix.items),
                }
                for n in range(1, mix.items + 1)
            ]
            _insert(conn, "items", items)
            invoices, lines = [], []
            for n in range(1, mix.invoices + 1):
                first, second = 1 + n % mix.items, 1 + (n + 1) % mix.items
                amounts = [Decimal(f"{10 + first % 90}.50") * 2, Decimal(f"{10 + second % 90}.50")]
                total = sum(amounts, Decimal(0))
                invoices.append(
                    {
                        "id": n,
                        "customer_id": 1 + n % mix.customers,
                        "number": f"B-{n:06d}",
                        "issued_on": codec.write(Kind.DATE, date(2026, 3, 1) + timedelta(days=n % 28)),
                        "due_on": codec.write(Kind.DATE, date(2026, 4, 1) + timedelta(days=n % 28)),
                        "total": money(total),
                        "balance": money(total),
                        **kept_at(n, mix.invoices),
                    }
                )
                for position, (item, quantity, amount) in enumerate(
                    [(first, 2, amounts[0]), (second, 1, amounts[1])], start=1
                ):
                    lines.append(
                        {
                            "invoice_id": n,
                            "position": position,
                            "item_id": item,
                            "description": f"Line {position}",
                            "quantity": codec.write(Kind.DECIMAL, Decimal(quantity)),
                            "unit_price": money(amount / quantity),
                            "amount": money(amount),
                            "taxable": codec.write(Kind.BOOL, False),
                        }
                    )
            _insert(conn, "invoices", invoices)
            _insert(conn, "invoice_lines", lines)
            payments, applications = [], []
            for n in range(1, mix.payments + 1):
                invoice = invoices[(n - 1) % len(invoices)]
                payments.append(
                    {
                        "id": n,
                        "customer_id": invoice["customer_id"],
                        "received_on": codec.write(Kind.DATE, date(2026, 4, 2)),
                        "amount": invoice["total"],
                        "reference": f"P-{n:06d}",
                        **kept_at(n, mix.payments),
                    }
                )
                applications.append(
                    {"payment_id": n, "position": 1, "invoice_id": invoice["id"], "amount": invoice["total"]}
                )
            _insert(conn, "payments", payments)
            _insert(conn, "payment_applications", applications)
            _advance_sequences(
                conn, ["customers", "items", "invoices", "invoice_lines", "payments", "payment_applications"]
            )
    finally:
        engine.dispose()


def read_mix(url: str) -> dict[str, list[dict[str, Any]]]:
    """The app's rows, for a client that copies them to QuickBooks itself (the naive loop)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = ("customers", "items", "invoices", "invoice_lines", "payments", "payment_applications")
            return {
                t: [dict(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t} ORDER BY id").mappings()]
                for t in tables
            }
    finally:
        engine.dispose()
