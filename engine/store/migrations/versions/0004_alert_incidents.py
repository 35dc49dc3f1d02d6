"""Alert incidents: each alert is sent once per incident and channel, whichever process finds it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from tables.py: a revision must keep meaning what it meant.
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_incidents",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("key", "channel", name="pk_alert_incidents"),
    )


def downgrade() -> None:
    op.drop_table("alert_incidents")
