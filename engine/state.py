"""Values the state store hands out: plain frozen models, never SQLAlchemy rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import AwareDatetime, Field

from engine.model import ChangeEvent, EntityType, Frozen, Side
from engine.plan import ConflictPolicy, Op, OpStatus


class ConnectionStatus(StrEnum):
    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"
    REVOKED = "revoked"


class Connection(Frozen):
    """An app tenant paired with a QuickBooks company (realm)."""

    id: str
    realm_id: str | None = None
    app_tenant: str = "default"
    environment: str = "emulator"
    status: ConnectionStatus = ConnectionStatus.CONNECTED
    #: Fernet ciphertext of the token set; the store never sees clear tokens.
    tokens_encrypted: bytes | None = None
    access_expires_at: AwareDatetime | None = None
    refresh_expires_at: AwareDatetime | None = None
    refresh_hard_expires_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class Link(Frozen):
    """The id mapping of one record: its id in the app and in QuickBooks (either may not exist yet)."""

    id: str
    connection: str
    entity: EntityType
    app_id: str | None = None
    quickbooks_id: str | None = None

    def external_id(self, side: Side) -> str | None:
        return self.app_id if side is Side.APP else self.quickbooks_id


class Snapshot(Frozen):
    """The base of one link: the last state both sides agreed on, and the last version seen per side."""

    link_id: str
    #: Canonical fields in JSON form; None before both sides ever agreed.
    base: dict[str, Any] | None = None
    app_seq: int | None = None
    quickbooks_seq: int | None = None
    #: The record was deleted on both sides; later events for it are ignored.
    tombstone: bool = False
    #: Optimistic version of this row, bumped by every save.
    revision: int = 0

    def seq(self, side: Side) -> int | None:
        return self.app_seq if side is Side.APP else self.quickbooks_seq


class JournalStatus(StrEnum):
    NEW = "new"
    PROCESSED = "processed"
    #: An older version than one already journaled: recorded, changes nothing.
    STALE = "stale"


class JournalEntry(Frozen):
    id: int
    event: ChangeEvent
    status: JournalStatus
    received_at: AwareDatetime


class AppendResult(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"


class RecordKey(Frozen):
    """Identifies one record on one side."""

    connection: str
    side: Side
    entity: EntityType
    external_id: str


#: `OpRecord.sent_as` of an op sent on its own (its requestid is its op id).
SENT_SINGLE = "single"


class OpRecord(Frozen):
    op: Op
    status: OpStatus
    attempts: int = 0
    last_error: str | None = None
    #: How it was last sent, when that send's answer is not known to have been refused: the key of
    #: the batch it went in, or SENT_SINGLE. Sent again exactly so, for the other side to replay it.
    sent_as: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class LedgerEntry(Frozen):
    """A version our own write produced: the fields that write set, and the values it set (JSON form)."""

    connection: str
    side: Side
    entity: EntityType
    external_id: str
    seq: int
    fields: frozenset[str]
    #: What the write sent, by field; empty for entries stored before values were kept.
    values: dict[str, Any] = Field(default_factory=dict)


class ConflictStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Conflict(Frozen):
    id: int
    connection: str
    link_id: str
    entity: EntityType
    field: str
    #: Values in JSON form.
    base: Any = None
    app: Any = None
    quickbooks: Any = None
    policy: ConflictPolicy = ConflictPolicy.MANUAL
    status: ConflictStatus = ConflictStatus.OPEN
    resolution: Any = None
    resolved_by: str | None = None
    resolved_at: AwareDatetime | None = None
    created_at: AwareDatetime


class Cursor(Frozen):
    """Where reading changes of one entity on one side resumes (opaque to the store)."""

    connection: str
    side: Side
    entity: EntityType
    position: str
    updated_at: AwareDatetime


class ParkedRecord(Frozen):
    """A record one side holds that could not be read into the canonical model (see ports.Rejection).

    It stays here, shown by `ledgersync status`, until the record is read again and reads well.
    """

    connection: str
    side: Side
    entity: EntityType
    external_id: str
    #: The version that was read (0 when the row's own version could not be read).
    seq: int
    reason: str
    parked_at: AwareDatetime
    #: When it was last read (still bad) or tried again.
    checked_at: AwareDatetime

    @property
    def key(self) -> RecordKey:
        return RecordKey(
            connection=self.connection, side=self.side, entity=self.entity, external_id=self.external_id
        )


class AuditAction(StrEnum):
    CAPTURED = "captured"
    DECIDED = "decided"
    WRITTEN = "written"
    ECHO_DROPPED = "echo_dropped"
    CONFLICT = "conflict"
    RESOLVED = "resolved"
    PARKED = "parked"
    STALE = "stale"
    #: A person sent a parked op again, or set it aside (detail: op_id, by).
    RETRIED = "retried"
    SKIPPED = "skipped"


class AuditEntry(Frozen):
    id: int
    connection: str
    entity: EntityType
    link_id: str | None = None
    side: Side | None = None
    external_id: str | None = None
    action: AuditAction
    detail: dict[str, Any] = Field(default_factory=dict)
    at: datetime


class AuditLine(NamedTuple):
    """One line to append to the audit trail (`StoreSession.audit_many` writes them)."""

    connection: str
    entity: EntityType
    action: AuditAction
    at: datetime
    link_id: str | None = None
    side: Side | None = None
    external_id: str | None = None
    detail: dict[str, Any] | None = None

    @classmethod
    def about_op(cls, op: Op, action: AuditAction, at: datetime, **detail: Any) -> AuditLine:
        """A line in `op`'s record's history (its op id first in the detail)."""
        return cls(
            op.connection,
            op.entity,
            action,
            at,
            link_id=op.link_id,
            side=op.side,
            external_id=op.external_id,
            detail={"op_id": op.op_id, **detail},
        )


class Processed(NamedTuple):
    """A record whose journal entries up to `seq` are decided."""

    key: RecordKey
    seq: int


class InboxEntry(Frozen):
    """A raw QuickBooks webhook body, stored before it is acknowledged."""

    id: int
    body: bytes
    received_at: AwareDatetime
    processed: bool = False
    error: str | None = None
    #: The company the delivery is for (None: stored before deliveries were routed, or malformed).
    realm_id: str | None = None


@dataclass
class InboxReport:
    """What one read of the webhook inbox did (`ports.Inbox.ingest`)."""

    entries: int = 0
    events: int = 0
    #: The records that got a new version in the journal, to decide next.
    changed: list[RecordKey] = field(default_factory=list)
    #: Realm -> why its records could not be read now (those entries stay pending, to retry).
    failed: dict[str, str] = field(default_factory=dict)
    #: Realms no connector is configured for (their notifications are dropped, with a warning).
    unknown_realms: set[str] = field(default_factory=set)


class Counts(Frozen):
    """How much of everything one connection has, by status: what /metrics and `status` report."""

    journal: dict[str, int] = Field(default_factory=dict)
    ops: dict[str, int] = Field(default_factory=dict)
    conflicts: dict[str, int] = Field(default_factory=dict)
    audit: dict[str, int] = Field(default_factory=dict)
    links: int = 0


class Observed(Frozen):
    """How far behind one connection is, read at scrape time for /metrics."""

    #: When the oldest open conflict was opened (None: none open).
    oldest_open_conflict: AwareDatetime | None = None
    #: Per side a change came from ("app", "quickbooks"): when the oldest change not yet written to
    #: the other side was read (journaled and undecided, or planned and not yet applied).
    oldest_unsynced: dict[str, AwareDatetime] = Field(default_factory=dict)
    parked_records: int = 0


class AlertIncident(Frozen):
    """One open incident on one alert channel, and whether it was sent there."""

    key: str
    channel: str
    kind: str
    connection: str
    message: str
    opened_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    attempts: int = 0
    last_error: str | None = None


class Role(StrEnum):
    """What a console user may do: a reviewer resolves conflicts and retries parked work; an admin also
    reconnects companies."""

    REVIEWER = "reviewer"
    ADMIN = "admin"


class User(Frozen):
    """A local login of the review console. `password_hash` is an Argon2 hash (engine/passwords.py)."""

    login: str
    role: Role = Role.REVIEWER
    password_hash: str = Field(repr=False)
    #: Failed sign-ins in a row (reset by a good one); at the limit the login is locked for a while.
    failed_logins: int = 0
    locked_until: AwareDatetime | None = None
    created_at: AwareDatetime
    last_login_at: AwareDatetime | None = None
