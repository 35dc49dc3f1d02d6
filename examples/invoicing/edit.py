"""Edit the example app's database as one of its users would (not as ledgersync does).

    python -m examples.invoicing.edit --db sqlite:///app.db customer 3 phone=555-0100 "city=Saint-Étienne"
    python -m examples.invoicing.edit --db URL item 2 price=21.50 taxable=false
    python -m examples.invoicing.edit --db URL --delete invoice 2

Columns are the app's own (see schema.sql). Each edit runs in one transaction, bumps `version`,
sets `updated_at` to now and `changed_by` to 'user', as the app's own code does. Deleting a customer
or an item sets `deleted_at`; deleting an invoice or a payment removes it and leaves a tombstone.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from connectors.app.codec import Codec
from connectors.app.database import make_engine

TABLES = {"customer": "customers", "item": "items", "invoice": "invoices", "payment": "payments"}
SOFT_DELETED = {"customer", "item"}
_TRUE = {"true", "yes", "1", "on"}


def edit_record(
    url: str, entity: str, record_id: int, changes: dict[str, str], *, schema: str | None = None
) -> int:
    """Apply `changes` (column -> text value) to one record; returns its new version."""
    engine = make_engine(url, schema=schema)
    try:
        codec = Codec(engine.dialect.name)
        table = TABLES[entity]
        types = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns(table)}
        unknown = sorted(set(changes) - set(types))
        if unknown:
            raise SystemExit(f"{table} has no column {', '.join(unknown)}")
        values = {name: _value(types[name], text) for name, text in changes.items()}
        values.update(updated_at=codec.write_timestamp(datetime.now(UTC)), changed_by="user")
        target = sa.table(table, *(sa.column(c) for c in [*values, "id", "version"]))
        update = (
            sa.update(target)
            .where(target.c.id == record_id)
            .values({**values, "version": target.c.version + 1})
            .returning(target.c.version)
        )
        with engine.begin() as conn:
            version = conn.execute(update).scalar_one_or_none()
        if version is None:
            raise SystemExit(f"there is no {entity} {record_id}")
        return int(version)
    finally:
        engine.dispose()


def delete_record(url: str, entity: str, record_id: int, *, schema: str | None = None) -> None:
    """Delete one record as the app does: soft for customers and items, with a tombstone otherwise."""
    engine = make_engine(url, schema=schema)
    try:
        now = Codec(engine.dialect.name).write_timestamp(datetime.now(UTC))
        table = TABLES[entity]
        with engine.begin() as conn:
            if entity in SOFT_DELETED:
                found = conn.execute(
                    sa.text(
                        f"UPDATE {table} SET deleted_at = :now, updated_at = :now,"  # noqa: S608
                        " version = version + 1, changed_by = 'user' WHERE id = :id RETURNING id"
                    ),
                    {"now": now, "id": record_id},
                ).first()
            else:
                found = conn.execute(
                    sa.text(f"DELETE FROM {table} WHERE id = :id RETURNING version"),  # noqa: S608
                    {"id": record_id},
                ).first()
                if found is not None:
                    conn.execute(
                        sa.text(
                            "INSERT INTO deleted_records (entity, record_id, version, deleted_at)"
                            " VALUES (:entity, :id, :version, :now)"
                        ),
                        {"entity": entity, "id": record_id, "version": found[0] + 1, "now": now},
                    )
        if found is None:
            raise SystemExit(f"there is no {entity} {record_id}")
    finally:
        engine.dispose()


def _value(column_type: Any, text: str) -> Any:
    if text == "":
        return None
    if isinstance(column_type, sa.Boolean):
        return text.strip().lower() in _TRUE
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.invoicing.edit", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", required=True, help="the example app's database URL")
    parser.add_argument("--schema", help="PostgreSQL schema holding the app's tables")
    parser.add_argument("--delete", action="store_true", help="delete the record instead of editing it")
    parser.add_argument("entity", choices=sorted(TABLES))
    parser.add_argument("id", type=int)
    parser.add_argument("changes", nargs="*", metavar="column=value", help="an empty value stores NULL")
    args = parser.parse_args(argv)
    if args.delete:
        delete_record(args.db, args.entity, args.id, schema=args.schema)
        print(f"deleted {args.entity} {args.id}")
        return 0
    if not args.changes:
        parser.error("give at least one column=value (or --delete)")
    pairs = [change.partition("=") for change in args.changes]
    if any(not sep for _, sep, _ in pairs):
        parser.error("changes are column=value")
    version = edit_record(args.db, args.entity, args.id, {k: v for k, _, v in pairs}, schema=args.schema)
    print(f"{args.entity} {args.id} is now at version {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
