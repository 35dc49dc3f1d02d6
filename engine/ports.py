"""The ports the engine depends on: small Protocols, each with an in-tree fake."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

from engine.errors import LedgersyncError
from engine.model import ChangeEvent, EntityType, Frozen, Side, Version
from engine.plan import ConflictPolicy, DeleteAction, Direction, FieldConflict, Op, OpStatus
from engine.state import (
    AlertIncident,
    AppendResult,
    AuditEntry,
    AuditLine,
    Conflict,
    Connection,
    Counts,
    Cursor,
    InboxEntry,
    InboxReport,
    JournalEntry,
    LedgerEntry,
    Link,
    Observed,
    OpRecord,
    ParkedRecord,
    Processed,
    RecordKey,
    Snapshot,
    User,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class DuplicateNames(StrEnum):
    """What to do when a QuickBooks DisplayName (or item Name) is already taken."""

    SUFFIX = "suffix"
    LINK = "link"
    MANUAL = "manual"


class Policy(Protocol):
    """Direction and conflict rules, per entity and field (implemented by `policies`)."""

    def direction(self, entity: EntityType, field: str) -> Direction: ...

    def conflict_policy(self, entity: EntityType, field: str) -> ConflictPolicy: ...

    def fill_empty(self, entity: EntityType, field: str) -> bool: ...

    def delete_action(self, entity: EntityType, target: Side) -> DeleteAction: ...

    def match_keys(self, entity: EntityType) -> tuple[str, ...]: ...

    def duplicate_names(self, entity: EntityType) -> DuplicateNames: ...


class Rejection(Frozen):
    """A record a side holds but cannot hand over (a value it cannot read): parked, shown, never skipped.

    `reason` says what to fix, where: "row 7 of invoice_lines, column amount: 'abc' is not a number".
    """

    entity: EntityType
    external_id: str
    version: Version
    reason: str


class ChangePage(Frozen):
    """A page of changes read from one side; `cursor` resumes after it (and after its rejections)."""

    events: tuple[ChangeEvent, ...] = ()
    #: Records read but not readable as canonical records; the runner parks them until they are fixed.
    rejected: tuple[Rejection, ...] = ()
    cursor: str | None = None
    #: False when more changes are waiting (call again with `cursor`).
    complete: bool = True


class WriteResult(Frozen):
    """What a write produced: the record's id and new version, and its fields as that side now holds them."""

    external_id: str
    version: Version
    #: Canonical fields (python form) as stored after the write; empty for a delete.
    fields: dict[str, Any] = {}
    deleted: bool = False
    #: The write found an existing record and adopted it instead (a duplicate name linked by policy):
    #: its fields are someone else's, not ours, so they are reconciled rather than taken as our echo.
    adopted: bool = False


class Capabilities(Frozen):
    side: Side
    entities: frozenset[EntityType]
    batch_size: int = 1


#: (entity, ids) -> each id's highest version already journaled (ids never journaled left out).
Journaled = Callable[[EntityType, Collection[str]], Mapping[str, int]]


class Connector(Protocol):
    """One side of the sync: reads changes, fetches records, applies ops."""

    @property
    def side(self) -> Side: ...

    def capabilities(self) -> Capabilities: ...

    def read_changes(
        self, entity: EntityType, cursor: str | None, journaled: Journaled | None = None
    ) -> ChangePage:
        """Changes after `cursor` (None: everything). Never skips a change; may repeat some.

        `journaled`, when given, says which versions the journal holds already (our own writes'
        results, journaled when they were made, and what earlier reads brought): a connector may
        leave the versions at or below an id's out of the page without mapping them, since the
        journal would drop them as duplicates or stale."""
        ...

    def fetch(self, entity: EntityType, external_id: str) -> ChangeEvent:
        """The record's current state (a delete event if it is gone); NotFoundError if it never existed."""
        ...

    def write(self, op: Op) -> WriteResult:
        """Apply one op, idempotently per `op.op_id`; references in `op.fields` are this side's ids.

        Raises the engine's error tree: VersionConflictError when `op.expected_seq` is stale,
        RecordRejectedError, RetriableError, NeedsReauthorizationError.
        """
        ...


class BatchWriter(Connector, Protocol):
    """An optional port on top of `Connector`: several independent ops in one request (QuickBooks /batch).

    The engine sends at most `capabilities().batch_size` ops at a time, and only ops that do not depend on
    each other (creates of customers and items): items of one batch cannot see each other.
    """

    def write_many(self, ops: Sequence[Op]) -> list[WriteResult | LedgersyncError]:
        """Apply `ops`; one result or error per op, in the order given, never raising for one op's fault.

        Idempotent per set of op ids: the same ops sent again (in any order) are replayed by the other
        side, not redone. A failure of the whole request comes back as the same error for each op.
        """
        ...


def batch_writer(connector: object) -> BatchWriter | None:
    """`connector` as a BatchWriter when it takes more than one op per request, else None (single writes)."""
    if not callable(getattr(connector, "write_many", None)) or not callable(
        getattr(connector, "capabilities", None)
    ):
        return None
    writer = cast(BatchWriter, connector)
    return writer if writer.capabilities().batch_size > 1 else None


class TogetherReader(Connector, Protocol):
    """An optional port on top of `Connector`: several entities' changes in one request (QuickBooks' CDC
    takes a list of entities, and each call is metered)."""

    def read_changes_together(
        self, cursors: Mapping[EntityType, str | None], journaled: Journaled | None = None
    ) -> dict[EntityType, ChangePage] | None:
        """Each entity's changes after its cursor, read at once; a page per entity, each with its own
        cursor and `complete` as `read_changes` would give. None when they cannot be read at once (a
        cursor that needs a sweep, an answer that may have been cut): read them one by one."""
        ...


def together_reader(connector: object) -> TogetherReader | None:
    """`connector` as a TogetherReader when it can read several entities in one request, else None."""
    if not callable(getattr(connector, "read_changes_together", None)):
        return None
    return cast(TogetherReader, connector)


class StoreSession(Protocol):
    """One transaction on the state store: everything done through it commits together or not at all."""

    # connections
    def save_connection(self, connection: Connection) -> None: ...
    def get_connection(self, connection_id: str) -> Connection | None: ...
    def lock_connection(self, connection_id: str) -> Connection | None:
        """The connection, its row held until the transaction ends (token refresh is single-flight)."""
        ...

    def list_connections(self) -> list[Connection]: ...

    # journal
    def append_event(self, event: ChangeEvent, now: datetime, *, processed: bool = False) -> AppendResult: ...
    def latest_event(self, key: RecordKey) -> JournalEntry | None: ...
    def pending_records(self, connection: str, limit: int = 100) -> list[RecordKey]: ...
    def count_pending_records(self, connection: str) -> int: ...
    def mark_processed(self, key: RecordKey, up_to_seq: int) -> None: ...

    # links and snapshots
    def find_link(self, connection: str, entity: EntityType, side: Side, external_id: str) -> Link | None: ...
    def get_link(self, link_id: str) -> Link | None: ...
    def create_link(
        self, connection: str, entity: EntityType, app_id: str | None, quickbooks_id: str | None
    ) -> Link: ...
    def set_link_id(self, link_id: str, side: Side, external_id: str | None) -> Link: ...
    def lock_link(self, link_id: str, *, wait: bool = True) -> bool:
        """Hold the link until the transaction ends; `wait=False`: False at once if another holds it."""
        ...

    def list_links(self, connection: str, entity: EntityType | None = None) -> list[Link]: ...
    def get_snapshot(self, link_id: str) -> Snapshot | None: ...
    def save_snapshot(self, snapshot: Snapshot) -> Snapshot: ...

    # ops
    def add_op(self, op: Op, now: datetime) -> None: ...
    def get_op(self, op_id: str) -> OpRecord | None: ...
    def set_op_status(
        self, op_id: str, status: OpStatus, now: datetime, error: str | None = None, attempt: bool = False
    ) -> None: ...
    def ops(
        self, connection: str, statuses: Sequence[OpStatus], link_id: str | None = None
    ) -> list[OpRecord]: ...
    def ops_page(
        self, connection: str, statuses: Sequence[OpStatus], after: tuple[int, str], limit: int
    ) -> tuple[list[OpRecord], tuple[int, str]]: ...

    # ledger
    def record_write(self, entry: LedgerEntry) -> None: ...
    def ledger_for(
        self, connection: str, side: Side, entity: EntityType, external_id: str
    ) -> list[LedgerEntry]: ...

    # conflicts
    def open_conflict(
        self, connection: str, link_id: str, entity: EntityType, conflict: FieldConflict, now: datetime
    ) -> Conflict:
        """Open (or refresh the values of) the conflict on (link, field); values are in JSON form."""
        ...

    def get_conflict(self, conflict_id: int) -> Conflict | None: ...
    def list_conflicts(
        self, connection: str | None = None, open_only: bool = True, link_id: str | None = None
    ) -> list[Conflict]: ...
    def resolve_conflict(self, conflict_id: int, value: Any, by: str, now: datetime) -> Conflict: ...
    def resolved_ops(self, connection: str | None, since: datetime) -> list[str]: ...

    # cursors
    def get_cursor(self, connection: str, side: Side, entity: EntityType) -> Cursor | None: ...
    def save_cursor(self, cursor: Cursor) -> None: ...

    # audit
    def history(
        self,
        connection: str | None = None,
        link_id: str | None = None,
        side: Side | None = None,
        external_id: str | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]: ...

    # records parked at capture (a side holds them, but they could not be read)
    def park_record(self, record: ParkedRecord) -> bool:
        """Park (or refresh) the record; True when it is newly parked or its reason changed."""
        ...

    def unpark_record(self, key: RecordKey, seq: int | None = None) -> bool:
        """Clear the record's parked entry (only if parked at or below `seq`, when given)."""
        ...

    def parked_records(
        self, connection: str, side: Side | None = None, entity: EntityType | None = None
    ) -> list[ParkedRecord]:
        """Parked records, least recently checked first."""
        ...

    def last_synced(self, connection: str) -> dict[tuple[Side, str], datetime]:
        """When each side was last read from ("read") and written to ("written"), by (side, kind)."""
        ...

    # the review console's local users
    def add_user(self, user: User) -> bool:
        """Insert the user; False when the login exists already."""
        ...

    def save_user(self, user: User) -> None: ...
    def get_user(self, login: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def delete_user(self, login: str) -> bool: ...
    def record_failed_login(self, login: str, now: datetime, limit: int, lock_for: timedelta) -> User | None:
        """Count a failed sign-in; at `limit` in a row, lock the login for `lock_for`."""
        ...

    def record_login(self, login: str, now: datetime) -> None: ...

    def counts(self, connection: str) -> Counts:
        """Rows per status and audit actions per kind, for metrics and `status`."""
        ...

    # set-based: what a page of records needs, in a few statements (see engine/store/bulk.py)
    def links_of(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, Link]:
        """The links holding these ids on `side`, by that id."""
        ...

    def create_links(self, links: Sequence[Link]) -> None: ...
    def lock_links(self, link_ids: Collection[str], *, wait: bool = True) -> dict[str, Link]:
        """Hold and re-read these links; `wait=False` leaves out those another transaction holds."""
        ...

    def set_link_ids(self, side: Side, ids: Mapping[str, str]) -> None: ...
    def get_links(self, link_ids: Collection[str]) -> dict[str, Link]: ...
    def snapshots_of(self, link_ids: Collection[str]) -> dict[str, Snapshot]: ...
    def save_snapshots(self, connection: str, snapshots: Sequence[Snapshot], stored: Collection[str]) -> None:
        """Optimistic saves; `stored` names the links whose snapshot row exists already."""
        ...

    def latest_events_of(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, JournalEntry]: ...
    def user_edits_of(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, datetime]:
        """The time of each record's newest journaled version that is not our own write, by id."""
        ...

    def journaled_seqs(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, int]:
        """Each record's highest journaled version number (any status), by id (never journaled: left out)."""
        ...

    def append_events(
        self, events: Sequence[ChangeEvent], now: datetime, processed: Sequence[bool] | None = None
    ) -> list[AppendResult]: ...
    def mark_processed_many(self, done: Iterable[Processed]) -> None: ...
    def blocked_links(
        self, connection: str, link_ids: Collection[str], statuses: Sequence[OpStatus]
    ) -> set[str]: ...
    def creates_in_flight(
        self, connection: str, statuses: Sequence[OpStatus]
    ) -> set[tuple[Side, EntityType]]: ...
    def add_ops(self, ops: Sequence[Op], now: datetime) -> None: ...
    def ops_by_id(self, op_ids: Collection[str]) -> dict[str, OpRecord]: ...
    def op_statuses(self, op_ids: Collection[str]) -> dict[str, OpStatus]: ...
    def set_sent_as(self, sent: Mapping[str, str | None]) -> None: ...
    def ops_applied(self, op_ids: Collection[str], now: datetime) -> None: ...
    def ledger_of_records(
        self, connection: str, entity: EntityType, side: Side, external_ids: Collection[str]
    ) -> dict[str, list[LedgerEntry]]: ...
    def record_writes(self, entries: Sequence[LedgerEntry]) -> None: ...
    def open_conflicts_of(self, link_ids: Collection[str]) -> dict[str, list[Conflict]]: ...
    def audit_many(self, lines: Sequence[AuditLine]) -> None: ...
    def any_parked(self, connection: str, side: Side, entity: EntityType) -> bool: ...

    # webhook inbox
    def inbox_add(self, body: bytes, now: datetime, realm_id: str | None = None) -> int: ...
    def inbox_pending(self, limit: int = 100, realm_id: str | None = None) -> list[InboxEntry]: ...
    def inbox_realms(self) -> set[str | None]: ...
    def inbox_kept(self, limit: int = 100) -> list[InboxEntry]: ...
    def inbox_done(self, entry_id: int, error: str | None = None) -> None: ...

    # observability: what /metrics reads, and the alerts sent once per incident
    def observed(self, connection: str) -> Observed: ...
    def open_incidents(self, incidents: Sequence[AlertIncident]) -> None: ...
    def clear_incidents(self, current: Collection[str], keep: Collection[str] = ()) -> int: ...
    def claim_unsent(
        self, now: datetime, lease: timedelta, channels: Collection[str]
    ) -> list[AlertIncident]: ...
    def incident_sent(self, key: str, channel: str, now: datetime, error: str | None = None) -> None: ...
    def incidents(self, connection: str | None = None) -> list[AlertIncident]: ...


class StateStore(Protocol):
    def session(self) -> AbstractContextManager[StoreSession]:
        """A transaction: commits when the block exits normally, rolls back on an exception."""
        ...

    def claim_ops(self, op_ids: Sequence[str]) -> AbstractContextManager[frozenset[str]]:
        """Claim those of `op_ids` no other worker holds, while the block runs; yields the ids claimed.

        Whoever applies an op holds its claim from reading it to recording the outcome, so two
        workers never write one op at once.
        """
        ...

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic upgrade head)."""
        ...

    def dispose(self) -> None: ...


class Inbox(Protocol):
    """Stored notifications that name changed records (QuickBooks webhooks), implemented by the
    connector that understands them (`connectors.quickbooks.receiver.QuickBooksInbox`)."""

    def ingest(self, limit: int = 100, connection: str | None = None) -> InboxReport:
        """Read the records the pending notifications name, journal them, mark the notifications read
        (those whose records could not be read stay pending); the report names the records changed.
        `connection`: only the notifications of that connection's company (None: every company's)."""
        ...
