"""Every committed version of the example app's customers and invoices, kept by PostgreSQL triggers the
test installs in the app's own schema, so a write that changed nothing can be found afterwards without
asking ledgersync.

A deferred constraint trigger runs at commit, after every statement of the transaction: for an invoice
it sees the lines the writer replaced after updating the header. The row lock a writer holds until its
commit orders one record's versions, so the sequence numbers give each record's history in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

#: Columns every write moves: not content.
BOOKKEEPING = ("version", "updated_at", "changed_by")

INSTALL = """
CREATE TABLE faults_history (
    seq        BIGSERIAL PRIMARY KEY,
    tbl        TEXT NOT NULL,
    record_id  BIGINT NOT NULL,
    txid       BIGINT NOT NULL,
    changed_by TEXT,
    version    INTEGER,
    content    JSONB NOT NULL
);

CREATE FUNCTION faults_history_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    body jsonb;
BEGIN
    IF EXISTS (SELECT 1 FROM faults_history h
               WHERE h.tbl = TG_TABLE_NAME AND h.record_id = NEW.id AND h.txid = txid_current()) THEN
        RETURN NULL;  -- a second statement on the same row: the commit-time state is already kept
    END IF;
    EXECUTE format('SELECT to_jsonb(t) FROM %I.%I t WHERE t.id = $1', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO body USING NEW.id;
    IF body IS NULL THEN
        RETURN NULL;  -- deleted before the commit
    END IF;
    IF TG_TABLE_NAME = 'invoices' THEN
        body := body || jsonb_build_object('lines', (
            SELECT coalesce(jsonb_agg(to_jsonb(l) - 'id' - 'invoice_id' ORDER BY l.position), '[]'::jsonb)
            FROM invoice_lines l WHERE l.invoice_id = NEW.id));
    END IF;
    INSERT INTO faults_history (tbl, record_id, txid, changed_by, version, content)
    VALUES (TG_TABLE_NAME, NEW.id, txid_current(), body ->> 'changed_by', (body ->> 'version')::int,
            body - 'version' - 'updated_at' - 'changed_by');
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER customers_faults_history AFTER INSERT OR UPDATE ON customers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION faults_history_snapshot();
CREATE CONSTRAINT TRIGGER invoices_faults_history AFTER INSERT OR UPDATE ON invoices
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION faults_history_snapshot();
"""


@dataclass(frozen=True)
class Version:
    table: str
    record_id: int
    version: int | None
    changed_by: str | None
    content: dict[str, Any]


def install(app_url: str) -> None:
    """Create the history table and its triggers in the app's schema (the URL's search path)."""
    engine = sa.create_engine(app_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(INSTALL.replace("%", "%%"))  # the driver's placeholders
    finally:
        engine.dispose()


def versions(app_url: str) -> list[Version]:
    """Every kept version, each record's in commit order."""
    engine = sa.create_engine(app_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT tbl, record_id, version, changed_by, content FROM faults_history ORDER BY seq"
            ).all()
    finally:
        engine.dispose()
    return [Version(r.tbl, r.record_id, r.version, r.changed_by, dict(r.content)) for r in rows]


def unchanged_writes(history: list[Version], by: str = "ledgersync") -> list[Version]:
    """Versions written by `by` whose content equals the record's previous version: a version bump that
    changed nothing."""
    previous: dict[tuple[str, int], dict[str, Any]] = {}
    found = []
    for version in history:
        key = (version.table, version.record_id)
        if key in previous and version.changed_by == by and previous[key] == version.content:
            found.append(version)
        previous[key] = version.content
    return found
