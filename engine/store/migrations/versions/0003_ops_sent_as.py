"""How each op was last sent, so an op whose answer was lost is sent again exactly so.

`sent_as` holds the key of the /batch an op went out in (or "single"), written before the request
leaves: a worker killed after QuickBooks committed the request but before we recorded its answer
leaves the op pending, and the restarted worker must send the same set under the same requestid
for QuickBooks to replay it rather than write it twice.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("ops") as ops:
        ops.add_column(sa.Column("sent_as", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ops") as ops:
        ops.drop_column("sent_as")
