"""The state store's schema: SQLAlchemy Core tables, the only place the columns are declared."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_jsonable_python
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

#: Constraint names follow one convention so Alembic migrations can address them on every backend.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC; SQLite forgets the zone, so reads put UTC back."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only keeps timezone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class JsonValue(sa.TypeDecorator[Any]):
    """A JSON document (JSONB on PostgreSQL).

    Values are expected in JSON form already (Decimal and date as strings); anything still in python
    form is converted the way pydantic would, so a stray Decimal never breaks a commit.
    """

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(sa.JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else to_jsonable_python(value)


#: Surrogate keys: BIGINT on PostgreSQL, INTEGER on SQLite (only INTEGER PRIMARY KEY autoincrements there).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_SIDE = sa.String(16)
_ENTITY = sa.String(32)
_EXTERNAL_ID = sa.String(255)
_CONNECTION = sa.String(64)
_LINK_ID = sa.String(32)


def _link_fk() -> sa.ForeignKey:
    return sa.ForeignKey("links.id")


connections = sa.Table(
    "connections",
    metadata,
    sa.Column("id", _CONNECTION, primary_key=True),
    sa.Column("realm_id", sa.String(64)),
    sa.Column("app_tenant", sa.String(255), nullable=False),
    sa.Column("environment", sa.String(255), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("tokens_encrypted", sa.LargeBinary),
    sa.Column("access_expires_at", UtcDateTime),
    sa.Column("refresh_expires_at", UtcDateTime),
    sa.Column("refresh_hard_expires_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("id", _LINK_ID, primary_key=True),
    sa.Column("connection", _CONNECTION, nullable=False),
    sa.Column("entity", _ENTITY, nullable=False),
    # Unique constraints ignore NULLs on both backends: many links may still lack one side's id.
    sa.Column("app_id", _EXTERNAL_ID),
    sa.Column("quickbooks_id", _EXTERNAL_ID),
    sa.UniqueConstraint("connection", "entity", "app_id"),
    sa.UniqueConstraint("connection", "entity", "quickbooks_id"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("link_id", _LINK_ID, _link_fk(), primary_key=True),
    sa.Column("connection", _CONNECTION, nullable=False, index=True),
    sa.Column("base", JsonValue),
    sa.Column("app_seq", sa.BigInteger),
    sa.Column("quickbooks_seq", sa.BigInteger),
    sa.Column("tombstone", sa.Boolean, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("connection", _CONNECTION, nullable=False),
    sa.Column("side", _SIDE, nullable=False),
    sa.Column("entity", _ENTITY, nullable=False),
    sa.Column("external_id", _EXTERNAL_ID, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("payload", JsonValue, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("connection", "side", "entity", "external_id", "seq"),
    sa.Index(None, "connection", "status", "id"),
)

inbox = sa.Table(
    # Keyed by the company (realm) a delivery is for, so that each company's reads take only its own
    # deliveries; a body naming several realms is stored once per realm. NULL: stored before deliveries
    # were routed (read by every company's read, each taking its own notifications), or malformed.
    "inbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("processed", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("realm_id", sa.String(64)),
    sa.Index(None, "processed", "id"),
    sa.Index(None, "processed", "realm_id", "id"),
)

ops = sa.Table(
    "ops",
    metadata,
    sa.Column("op_id", sa.String(64), primary_key=True),
    # Insertion order: ops planned together share a timestamp, and "oldest first" must still be exact.
    sa.Column("position", sa.BigInteger, nullable=False, index=True),
    sa.Column("connection", _CONNECTION, nullable=False),
    sa.Column("link_id", _LINK_ID, _link_fk(), nullable=False, index=True),
    sa.Column("entity", _ENTITY, nullable=False),
    sa.Column("side", _SIDE, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("external_id", _EXTERNAL_ID),
    sa.Column("fields", JsonValue, nullable=False),
    sa.Column("expected_seq", sa.BigInteger),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # How the op was last sent (a batch's key, or "single"), written before the request leaves.
    sa.Column("sent_as", sa.String(20)),
    sa.Index(None, "connection", "status", "position"),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("connection", _CONNECTION, nullable=False),
    sa.Column("side", _SIDE, nullable=False),
    sa.Column("entity", _ENTITY, nullable=False),
    sa.Column("external_id", _EXTERNAL_ID, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("fields", JsonValue, nullable=False),
    sa.UniqueConstraint("connection", "side", "entity", "external_id", "seq"),
)

conflicts = sa.Table(
    "conflicts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("connection", _CONNECTION, nullable=False),
    sa.Column("link_id", _LINK_ID, _link_fk(), nullable=False),
    sa.Column("entity", _ENTITY, nullable=False),
    sa.Column("field", sa.String(255), nullable=False),
    sa.Column("base", JsonValue),
    sa.Column("app", JsonValue),
    sa.Column("quickbooks", JsonValue),
    sa.Column("policy", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("resolution", JsonValue),
    sa.Column("resolved_by", sa.String(255)),
    sa.Column("resolved_at", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "connection", "status", "id"),
    # At most one open conflict per (link, field); resolved ones accumulate as history.
    sa.Index(
        "uq_conflicts_open_link_field",
        "link_id",
        "field",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("connection", _CONNECTION, primary_key=True),
    sa.Column("side", _SIDE, primary_key=True),
    sa.Column("entity", _ENTITY, primary_key=True),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("connection", _CONNECTION, nullable=False),
    sa.Column("entity", _ENTITY, nullable=False),
    sa.Column("link_id", _LINK_ID, index=True),
    sa.Column("side", _SIDE),
    sa.Column("external_id", _EXTERNAL_ID),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", JsonValue, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Index(None, "connection", "side", "external_id"),
)

parked_records = sa.Table(
    # Records a side holds but could not hand over (a value it cannot read), one row per record.
    "parked_records",
    metadata,
    sa.Column("connection", _CONNECTION, primary_key=True),
    sa.Column("side", _SIDE, primary_key=True),
    sa.Column("entity", _ENTITY, primary_key=True),
    sa.Column("external_id", _EXTERNAL_ID, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("parked_at", UtcDateTime, nullable=False),
    sa.Column("checked_at", UtcDateTime, nullable=False),
)

alert_incidents = sa.Table(
    # One row per open incident and alert channel: inserted when the condition is found, claimed by
    # the process that sends it, marked sent, deleted when the condition clears (a recurrence sends).
    "alert_incidents",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("connection", _CONNECTION, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("claimed_until", UtcDateTime),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
)

users = sa.Table(
    # The review console's local logins; passwords as Argon2 hashes, lockout kept across restarts.
    "users",
    metadata,
    sa.Column("login", sa.String(80), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    sa.Column("locked_until", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_login_at", UtcDateTime),
)
