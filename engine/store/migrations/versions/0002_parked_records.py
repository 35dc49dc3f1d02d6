"""Parked records: what a side holds but could not hand over (a value it cannot read), until it is fixed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from tables.py: a revision must keep meaning what it meant.
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "parked_records",
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("parked_at", TIME, nullable=False),
        sa.Column("checked_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("connection", "side", "entity", "external_id", name="pk_parked_records"),
    )


def downgrade() -> None:
    op.drop_table("parked_records")
