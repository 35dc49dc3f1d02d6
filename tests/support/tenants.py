"""The example invoicing app shared by several tenants: every table the sync reads gains an
`account_id` column, and the mapping names it as each entity's tenant column (children inherit)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from connectors.app.codec import Codec
from connectors.app.database import make_engine
from examples.invoicing import MAPPING, create_example_db
from ledgersync.demo import Sandbox

#: The tables with a row per record (child tables inherit the tenant through their parent).
SCOPED_TABLES = ("customers", "items", "invoices", "payments", "deleted_records")


def create_tenant_db(url: str, *, schema: str | None = None, indexed: bool = True) -> None:
    """The example app's tables, empty, with `account_id` on each record table (`indexed`: and an
    index led by it, as each tenant's poll wants)."""
    create_example_db(url, schema=schema, with_data=False)
    engine = make_engine(url, schema=schema)
    try:
        with engine.begin() as conn:
            for table in SCOPED_TABLES:
                conn.exec_driver_sql(
                    f"ALTER TABLE {table} ADD COLUMN account_id VARCHAR(64) NOT NULL DEFAULT ''"
                )
                if indexed and table != "deleted_records":
                    conn.exec_driver_sql(
                        f"CREATE INDEX {table}_account ON {table} (account_id, updated_at, id)"
                    )
    finally:
        engine.dispose()


def tenant_mapping(directory: Path) -> Path:
    """The example mapping with `tenant_column: account_id` on every entity and its tombstones."""
    data: dict[str, Any] = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    for spec in data["entities"].values():
        spec["tenant_column"] = "account_id"
        tomb = (spec.get("delete") or {}).get("tombstone")
        if tomb is not None:
            tomb["tenant_column"] = "account_id"
    path = directory / "tenant-mapping.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def scope_sandbox(box: Sandbox, directory: Path) -> None:
    """A demo sandbox's app made one database of many tenants (`create_tenant_db`, empty) and its
    config pointed at the tenant-scoped mapping (`tenant_mapping`), so tenants may connect."""
    url = f"sqlite:///{directory / 'tenants.db'}"
    create_tenant_db(url)
    text = box.config_path.read_text(encoding="utf-8")
    text = text.replace(box.app_url, url).replace(str(MAPPING), str(tenant_mapping(directory)))
    box.config_path.write_text(text, encoding="utf-8")


def add_customer(engine: sa.Engine, tenant: str, display_name: str, **values: Any) -> int:
    """Insert a customer as the app would (changed_by 'user'); its id."""
    row = {
        "display_name": display_name,
        "account_id": tenant,
        "version": 1,
        "updated_at": Codec(engine.dialect.name).write_timestamp(datetime.now(UTC)),
        "changed_by": "user",
        **values,
    }
    table = sa.table("customers", *(sa.column(c) for c in [*row, "id"]))
    with engine.begin() as conn:
        return int(conn.execute(sa.insert(table).values(row).returning(table.c.id)).scalar_one())


def customers(engine: sa.Engine) -> list[dict[str, Any]]:
    """Every customer row (id, tenant, name, e-mail, phone), in id order."""
    query = sa.text("SELECT id, account_id, display_name, email, phone FROM customers ORDER BY id")
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
