"""Webhook deliveries routed by company: the inbox keeps the realm each delivery is for.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Deliveries stored before keep NULL: every company's read takes them, each its own notifications.
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("realm_id", sa.String(64), nullable=True))
    op.create_index("ix_inbox_processed_realm_id_id", "inbox", ["processed", "realm_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_processed_realm_id_id", table_name="inbox")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("realm_id")
