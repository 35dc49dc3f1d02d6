"""The first schema: connections, links, snapshots, journal, inbox, ops, ledger, conflicts, cursors, audit.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from tables.py: a revision must keep meaning what it meant.
TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SIDE = sa.String(16)
ENTITY = sa.String(32)
EXTERNAL_ID = sa.String(255)
CONNECTION = sa.String(64)
LINK_ID = sa.String(32)


def _link_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["link_id"], ["links.id"], name=f"fk_{table}_link_id_links")


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", CONNECTION, nullable=False),
        sa.Column("realm_id", sa.String(64)),
        sa.Column("app_tenant", sa.String(255), nullable=False),
        sa.Column("environment", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("tokens_encrypted", sa.LargeBinary),
        sa.Column("access_expires_at", TIME),
        sa.Column("refresh_expires_at", TIME),
        sa.Column("refresh_hard_expires_at", TIME),
        sa.Column("updated_at", TIME),
        sa.PrimaryKeyConstraint("id", name="pk_connections"),
    )
    op.create_table(
        "links",
        sa.Column("id", LINK_ID, nullable=False),
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("entity", ENTITY, nullable=False),
        sa.Column("app_id", EXTERNAL_ID),
        sa.Column("quickbooks_id", EXTERNAL_ID),
        sa.PrimaryKeyConstraint("id", name="pk_links"),
        sa.UniqueConstraint("connection", "entity", "app_id", name="uq_links_connection_entity_app_id"),
        sa.UniqueConstraint(
            "connection", "entity", "quickbooks_id", name="uq_links_connection_entity_quickbooks_id"
        ),
    )
    op.create_table(
        "snapshots",
        sa.Column("link_id", LINK_ID, nullable=False),
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("base", JSON),
        sa.Column("app_seq", sa.BigInteger),
        sa.Column("quickbooks_seq", sa.BigInteger),
        sa.Column("tombstone", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("link_id", name="pk_snapshots"),
        _link_fk("snapshots"),
    )
    op.create_index("ix_snapshots_connection", "snapshots", ["connection"])
    op.create_table(
        "journal",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("side", SIDE, nullable=False),
        sa.Column("entity", ENTITY, nullable=False),
        sa.Column("external_id", EXTERNAL_ID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
        sa.UniqueConstraint(
            "connection",
            "side",
            "entity",
            "external_id",
            "seq",
            name="uq_journal_connection_side_entity_external_id_seq",
        ),
    )
    op.create_index("ix_journal_connection_status_id", "journal", ["connection", "status", "id"])
    op.create_table(
        "inbox",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("processed", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
    )
    op.create_index("ix_inbox_processed_id", "inbox", ["processed", "id"])
    op.create_table(
        "ops",
        sa.Column("op_id", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("link_id", LINK_ID, nullable=False),
        sa.Column("entity", ENTITY, nullable=False),
        sa.Column("side", SIDE, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("external_id", EXTERNAL_ID),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("expected_seq", sa.BigInteger),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("op_id", name="pk_ops"),
        _link_fk("ops"),
    )
    op.create_index("ix_ops_link_id", "ops", ["link_id"])
    op.create_index("ix_ops_position", "ops", ["position"])
    op.create_index("ix_ops_connection_status_position", "ops", ["connection", "status", "position"])
    op.create_table(
        "ledger",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("side", SIDE, nullable=False),
        sa.Column("entity", ENTITY, nullable=False),
        sa.Column("external_id", EXTERNAL_ID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger"),
        sa.UniqueConstraint(
            "connection",
            "side",
            "entity",
            "external_id",
            "seq",
            name="uq_ledger_connection_side_entity_external_id_seq",
        ),
    )
    op.create_table(
        "conflicts",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("link_id", LINK_ID, nullable=False),
        sa.Column("entity", ENTITY, nullable=False),
        sa.Column("field", sa.String(255), nullable=False),
        sa.Column("base", JSON),
        sa.Column("app", JSON),
        sa.Column("quickbooks", JSON),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", JSON),
        sa.Column("resolved_by", sa.String(255)),
        sa.Column("resolved_at", TIME),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conflicts"),
        _link_fk("conflicts"),
    )
    op.create_index("ix_conflicts_connection_status_id", "conflicts", ["connection", "status", "id"])
    op.create_index(
        "uq_conflicts_open_link_field",
        "conflicts",
        ["link_id", "field"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "cursors",
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("side", SIDE, nullable=False),
        sa.Column("entity", ENTITY, nullable=False),
        sa.Column("position", sa.Text, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("connection", "side", "entity", name="pk_cursors"),
    )
    op.create_table(
        "audit",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("connection", CONNECTION, nullable=False),
        sa.Column("entity", ENTITY, nullable=False),
        sa.Column("link_id", LINK_ID),
        sa.Column("side", SIDE),
        sa.Column("external_id", EXTERNAL_ID),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_link_id", "audit", ["link_id"])
    op.create_index("ix_audit_connection_side_external_id", "audit", ["connection", "side", "external_id"])


def downgrade() -> None:
    tables = ("audit", "cursors", "conflicts", "ledger", "ops", "inbox", "journal", "snapshots", "links")
    for table in (*tables, "connections"):
        op.drop_table(table)
