"""Many linked customers, fast: one made by the product, the rest copied from it in bulk.

A backfill of 100k records takes hours today, so the CPU benchmark does not make them that way. The
product syncs one template customer for real (the app row, the QuickBooks record, the link, the base
snapshot and both cursors are all its own work); then the template is copied N-1 times, under new ids
and names, in bulk on all three sides:

- the app: `INSERT ... SELECT`-style copies of the template's row (executemany, 2,000 a statement);
- QuickBooks: copies of the template's record put straight into the emulator's store (bench.emulator_proc);
- the state store: copies of the template's `links` and `snapshots` rows, read back by reflection so
  whatever columns the store has today are copied as they are, with the name in the base replaced.

Copies are stamped an hour in the past on both sides, behind both cursors, so no poll reads them
again; a no-op sync afterwards must capture and decide nothing, which `seed_customers` checks.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.appdata import customer_row, insert_sql
from bench.world import World
from connectors.app.codec import Codec
from connectors.app.database import make_engine

TEMPLATE = "Bench Template"
CHUNK = 2_000
AGE = timedelta(hours=1)


def name_of(n: int) -> str:
    return f"Bench {n:06d}"


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)]


def _template_app_row(w: World) -> None:
    engine = make_engine(w.app_url)
    try:
        codec = Codec(engine.dialect.name)
        row = customer_row(codec, 1, TEMPLATE, codec.write_timestamp(datetime.now(UTC)))
        with engine.begin() as conn:
            conn.execute(insert_sql("customers", list(row)), row)
    finally:
        engine.dispose()


def sync_until_quiet(w: World, passes: int = 5) -> dict[str, Any]:
    for _ in range(passes):
        result = w.cli_json("sync", "--json")
        if result["captured"] == 0 and result["decided"] == 0:
            return result
    raise RuntimeError(f"sync still captures after {passes} passes: {result}")


def seed_customers(w: World, total: int) -> dict[int, str]:
    """`total` linked customers (app id 1 is the template); returns app id -> QuickBooks id."""
    _template_app_row(w)
    w.connect()
    sync_until_quiet(w)
    state = make_engine(w.state_url)
    try:
        meta = sa.MetaData()
        meta.reflect(state, only=list(PER_RECORD))
        tables = meta.tables
        links = tables["links"]
        with state.connect() as conn:
            link = dict(
                conn.execute(sa.select(links).where(links.c.entity == "customer", links.c.app_id == "1"))
                .mappings()
                .one()
            )
            ids = {"app": "1", "quickbooks": str(link["quickbooks_id"])}
            template = {name: _template_rows(conn, tables[name], link["id"], ids) for name in PER_RECORD}
        names = [name_of(n) for n in range(2, total + 1)]
        qbo_ids = w.qbo.clone("Customer", ids["quickbooks"], names, AGE.total_seconds())
        pairs = {1: ids["quickbooks"], **dict(zip(range(2, total + 1), qbo_ids, strict=True))}
        _copy_app_rows(w, total)
        with state.begin() as conn:
            # A chunk of customers at a time, so 100k copies never sit in memory at once.
            for first in range(2, total + 1, CHUNK):
                copies: dict[str, list[dict[str, Any]]] = {name: [] for name in PER_RECORD}
                for n in range(first, min(first + CHUNK, total + 1)):
                    mine = {
                        "app": str(n),
                        "quickbooks": pairs[n],
                        "link": uuid.uuid4().hex,
                        "name": name_of(n),
                    }
                    for name in PER_RECORD:
                        copies[name] += [_copy(name, row, mine) for row in template[name]]
                for name in PER_RECORD:  # links first: the others refer to them
                    conn.execute(sa.insert(tables[name]), copies[name])
        _analyze(state, (*PER_RECORD, "ops", "conflicts", "audit"))
        _analyze_app(w)
    finally:
        state.dispose()
    quiet = w.cli_json("sync", "--json")
    if quiet["captured"] or quiet["decided"]:
        raise RuntimeError(f"the copies were read again by a poll (seeding is off): {quiet}")
    return pairs


def _analyze(engine: sa.Engine, tables: tuple[str, ...]) -> None:
    """Statistics for the tables just filled, as autovacuum (or SQLite's ANALYZE) keeps them in a
    database that grew to this size by use: without them PostgreSQL plans an IN over a table it
    believes empty as a scan of the whole index prefix (measured: 70 ms instead of 0.1 ms per query)."""
    with engine.begin() as conn:
        for table in tables:  # named: a bare ANALYZE would go through every schema of the database
            conn.execute(sa.text(f"ANALYZE {table}"))


def _analyze_app(w: World) -> None:
    app = make_engine(w.app_url)
    try:
        _analyze(app, ("customers",))
    finally:
        app.dispose()


#: The store's per-record rows a linked, synced customer has (besides history in `audit`), in the
#: order they are inserted.
PER_RECORD = ("links", "snapshots", "journal", "ledger")


def _template_rows(
    conn: sa.Connection, table: sa.Table, link_id: str, ids: dict[str, str]
) -> list[dict[str, Any]]:
    """The template's rows of a per-record table."""
    c = table.c
    if table.name == "links":
        where = c.id == link_id
    elif table.name == "snapshots":
        where = c.link_id == link_id
    else:  # journal and ledger: keyed by side and the side's id
        where = sa.or_(*((c.side == side) & (c.external_id == ext) for side, ext in ids.items()))
        where = where & (c.entity == "customer")
    rows = [dict(r) for r in conn.execute(sa.select(table).where(where)).mappings()]
    if not rows:
        raise RuntimeError(f"the template customer has no {table.name} rows")
    return rows


def _copy(table: str, row: dict[str, Any], mine: dict[str, str]) -> dict[str, Any]:
    """A copy of one template row for another customer: its ids, its name."""
    out = dict(row)
    if table == "links":
        return {**out, "id": mine["link"], "app_id": mine["app"], "quickbooks_id": mine["quickbooks"]}
    if table == "snapshots":
        out["link_id"] = mine["link"]
    else:
        out.pop("id", None)  # an autoincrement key
        out["external_id"] = mine[str(row["side"])]
    for key in ("base", "payload", "fields"):
        if key in out and out[key] is not None:
            value = json.loads(json.dumps(out[key]).replace(TEMPLATE, mine["name"]))
            if key == "payload" and isinstance(value, dict) and "external_id" in value:
                value["external_id"] = out["external_id"]
            out[key] = value
    return out


def _copy_app_rows(w: World, total: int) -> None:
    engine = make_engine(w.app_url)
    try:
        codec = Codec(engine.dialect.name)
        stamp = codec.write_timestamp(datetime.now(UTC) - AGE)
        with engine.begin() as conn:
            template = dict(conn.exec_driver_sql("SELECT * FROM customers WHERE id = 1").mappings().one())
            rows = [
                {**template, "id": n, "display_name": name_of(n), "updated_at": stamp}
                for n in range(2, total + 1)
            ]
            statement = insert_sql("customers", list(template))
            for chunk in _chunks(rows):
                conn.execute(statement, chunk)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('customers', 'id'), max(id)) FROM customers"
                )
    finally:
        engine.dispose()


def open_conflicts(w: World, app_ids: list[int], field: str = "phone") -> None:
    """An open `manual` conflict on `field` for each customer in `app_ids` (as a review queue would hold)."""
    state = make_engine(w.state_url)
    try:
        meta = sa.MetaData()
        meta.reflect(state, only=["links", "conflicts"])
        links, conflicts = meta.tables["links"], meta.tables["conflicts"]
        with state.begin() as conn:
            found = conn.execute(
                sa.select(links.c.id, links.c.app_id, links.c.connection).where(links.c.entity == "customer")
            ).all()
            wanted = {str(a) for a in app_ids}
            now = datetime.now(UTC)
            rows = [
                {
                    "connection": connection,
                    "link_id": link_id,
                    "entity": "customer",
                    "field": field,
                    "base": "555-0000",
                    "app": "555-1111",
                    "quickbooks": "555-2222",
                    "policy": "manual",
                    "status": "open",
                    "created_at": now,
                }
                for link_id, app_id, connection in found
                if app_id in wanted
            ]
            for chunk in _chunks(rows):
                conn.execute(sa.insert(conflicts), chunk)
    finally:
        state.dispose()
