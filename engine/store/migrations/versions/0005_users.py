"""The review console's local users: login, role, Argon2 password hash, and the lockout counters.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Spelled out rather than imported from tables.py: a revision must keep meaning what it meant.
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("login", sa.String(80), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", TIME),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_login_at", TIME),
        sa.PrimaryKeyConstraint("login", name="pk_users"),
    )


def downgrade() -> None:
    op.drop_table("users")
