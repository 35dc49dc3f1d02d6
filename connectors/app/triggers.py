"""Trigger-based capture: the outbox table and the triggers that fill it, for PostgreSQL and SQLite.

Every insert, update and delete of a mapped table (and of its child tables, as a change of the
parent) adds a row to the outbox in the same transaction. Set `capture: {mode: outbox}` on the
entities that should read it (see docs/app-connector.md).

On PostgreSQL the trigger also sends `pg_notify(<outbox table>, '<schema>.<entity>')`: delivered when
the transaction commits (once per entity per transaction, however many rows it changed), so a
listener (`connectors.app.listen`) reads the change within a moment instead of at the next poll.
Channels are per database, so the payload names the table's schema: an app in another schema of
the same database is told apart.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy import exc

from connectors.app import schema
from connectors.app.catalog import Catalog
from connectors.app.database import translate
from connectors.app.layout import Layout, bind
from connectors.app.mapping import Mapping
from engine.errors import ConfigurationError
from engine.model import EntityType

log = logging.getLogger(__name__)

OUTBOX_DDL = {
    "postgresql": """CREATE TABLE IF NOT EXISTS {table} (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity     VARCHAR(16) NOT NULL,
    record_id  VARCHAR(64) NOT NULL,
    operation  VARCHAR(8)  NOT NULL,
    seq        BIGINT,
    txid       BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {table}_read ON {table} (entity, txid, id)""",
    "sqlite": """CREATE TABLE IF NOT EXISTS {table} (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    entity     VARCHAR(16) NOT NULL,
    record_id  VARCHAR(64) NOT NULL,
    operation  VARCHAR(8)  NOT NULL,
    seq        BIGINT,
    txid       BIGINT,
    changed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS {table}_read ON {table} (entity, id)""",
}

_PG_FUNCTION = """CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO {outbox} (entity, record_id, operation, seq)
    VALUES ('{entity}', OLD.{key}::text, '{delete_op}', {delete_seq});
    PERFORM pg_notify('{channel}', TG_TABLE_SCHEMA || '.{entity}');
    RETURN OLD;
  END IF;
  INSERT INTO {outbox} (entity, record_id, operation) VALUES ('{entity}', NEW.{key}::text, 'upsert');
  PERFORM pg_notify('{channel}', TG_TABLE_SCHEMA || '.{entity}');
  RETURN NEW;
END $$"""
_PG_TRIGGER = """CREATE OR REPLACE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION {name}()"""
_SQLITE_TRIGGER = """CREATE TRIGGER IF NOT EXISTS {name}_{event} AFTER {event} ON {table} BEGIN
  INSERT INTO {outbox} (entity, record_id, operation, seq, changed_at)
  VALUES ('{entity}', CAST({row}.{key} AS TEXT), '{op}', {seq}, strftime('%Y-%m-%d %H:%M:%f', 'now'));
END"""
_PG_NOW_MICROS = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"
_SQLITE_NOW_MICROS = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"


def channel(outbox_table: str) -> str:
    """The PostgreSQL NOTIFY channel of an outbox: its table name, as PostgreSQL folds it."""
    return outbox_table.lower()


def statements(dialect: str, mapping: Mapping, layouts: dict[EntityType, Layout]) -> list[str]:
    """The DDL that installs the outbox and its triggers for every mapped table."""
    if dialect not in OUTBOX_DDL:
        raise ConfigurationError(f"install-triggers supports PostgreSQL and SQLite, not {dialect}")
    outbox = mapping.outbox_table
    found = OUTBOX_DDL[dialect].format(table=outbox).split(";\n")
    for entity, layout in layouts.items():
        spec = layout.spec
        version = spec.version_column
        delete_seq = (
            f"OLD.{version} + 1"
            if version
            else (_PG_NOW_MICROS if dialect == "postgresql" else _SQLITE_NOW_MICROS)
        )
        targets = [(spec.table, spec.primary_key, True)]
        child = layout.child
        if child is not None:
            targets.append((child.table, child.parent_key, False))
        for table, key, own in targets:
            name = f"ledgersync_{entity}_{table}"
            if dialect == "postgresql":
                found.append(
                    _PG_FUNCTION.format(
                        name=name,
                        outbox=outbox,
                        channel=channel(outbox),
                        entity=entity.value,
                        key=key,
                        delete_op="delete" if own else "upsert",
                        delete_seq=delete_seq if own else "NULL",
                    )
                )
                found.append(_PG_TRIGGER.format(name=name, table=table))
                continue
            for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
                deleting = own and event == "DELETE"
                found.append(
                    _SQLITE_TRIGGER.format(
                        name=name,
                        event=event,
                        table=table,
                        outbox=outbox,
                        entity=entity.value,
                        row=row,
                        key=key,
                        op="delete" if deleting else "upsert",
                        seq=delete_seq if deleting else "NULL",
                    )
                )
    return found


def install(engine: sa.Engine, mapping: Mapping) -> list[str]:
    """Create the outbox and the triggers (idempotent); returns the statements it ran."""
    try:
        catalog = Catalog(engine)
        schema.check(catalog, mapping, outbox=False)
        done = statements(engine.dialect.name, mapping, bind(catalog, mapping))
        with engine.begin() as conn:
            for statement in done:
                conn.exec_driver_sql(statement)
    except exc.SQLAlchemyError as error:
        raise translate(error) from error
    log.info("capture triggers installed", extra={"backend": engine.dialect.name, "count": len(done)})
    return done
