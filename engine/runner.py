"""The journaling runner: capture changes, journal them, decide, apply; in-process, until quiet.

Each step is idempotent and keyed by ids in the store, so the same functions back the Dramatiq actors:
a lost message or a killed worker loses nothing, the journal and the ops table are re-scanned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engine import pipeline
from engine.apply import Outcome
from engine.decide import Decision, decide_many, decide_record
from engine.errors import (
    NeedsReauthorizationError,
    NotFoundError,
    RecordRejectedError,
    RetriableError,
    VersionConflictError,
)
from engine.journal import journal_events, key_of
from engine.model import DEPENDS_ON, ChangeEvent, EntityType, Side
from engine.plan import OpStatus
from engine.ports import (
    ChangePage,
    Clock,
    Connector,
    Journaled,
    Policy,
    Rejection,
    StateStore,
    StoreSession,
    together_reader,
)
from engine.state import (
    AppendResult,
    AuditAction,
    AuditLine,
    Connection,
    ConnectionStatus,
    Cursor,
    ParkedRecord,
    RecordKey,
)

log = logging.getLogger(__name__)

#: Entities in dependency order: customers and items before invoices, invoices before payments.
ORDER: tuple[EntityType, ...] = (EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT)
assert all(ORDER.index(dep) < ORDER.index(e) for e in ORDER for dep in DEPENDS_ON[e])
#: Parked records read again (by id) per poll, least recently checked first: a fix that changed no
#: version or timestamp (a raw UPDATE of one line) is still found, without re-reading many each time.
RETRY_PARKED = 20
#: Records decided in one transaction by a pass of the runner: one commit for many decisions.
DECIDE_CHUNK = 100


@dataclass
class RunStats:
    captured: int = 0
    duplicates: int = 0
    stale: int = 0
    decided: int = 0
    applied: int = 0
    #: Records read but not readable (parked at capture, see `Rejection`).
    rejected: int = 0
    #: Distinct (link, field) conflicts seen open by this run's decisions.
    conflicted: set[tuple[str, str]] = field(default_factory=set)
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def conflicts(self) -> int:
        return len(self.conflicted)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome == Outcome.APPLIED:
            self.applied += 1


class Runner:
    """Runs the whole sync loop for one connection with the connectors it is given."""

    def __init__(
        self,
        store: StateStore,
        connectors: Mapping[Side, Connector],
        policy: Policy,
        clock: Clock,
        connection: str,
        entities: tuple[EntityType, ...] = ORDER,
    ) -> None:
        self.store = store
        self.connectors = connectors
        self.policy = policy
        self.clock = clock
        self.connection = connection
        # Only what every side holds syncs: an app mapping may leave out payments, say.
        held = [c.capabilities().entities for c in connectors.values()]
        self.entities = tuple(e for e in ORDER if e in entities and all(e in h for h in held))
        with store.session() as s:
            if s.get_connection(connection) is None:
                s.save_connection(Connection(id=connection, updated_at=clock.now()))

    def ingest(self, event: ChangeEvent, stats: RunStats | None = None) -> AppendResult:
        """Journal one event (duplicates are no-ops, older versions change nothing)."""
        with self.store.session() as s:
            return self.journal(s, event, stats)

    def journal(self, s: StoreSession, event: ChangeEvent, stats: RunStats | None = None) -> AppendResult:
        """`ingest` inside the caller's transaction."""
        return self.journal_many(s, [event], stats)[0]

    def journal_many(
        self, s: StoreSession, events: Sequence[ChangeEvent], stats: RunStats | None = None
    ) -> list[AppendResult]:
        """Journal a page of events in the caller's transaction (`engine.journal`), counted in `stats`."""
        results = journal_events(s, events, self.clock.now())
        if stats is not None:
            for result in results:
                stats.captured += result is AppendResult.NEW
                stats.duplicates += result is AppendResult.DUPLICATE
                stats.stale += result is AppendResult.STALE
        return results

    def poll(self, side: Side, entity: EntityType, stats: RunStats | None = None) -> int:
        """Read one side's changes from its cursor; the cursor moves only past what was journaled.
        How many records got a new version: counted page by page, not kept (a backfill's read of a
        big company would hold a key for every record)."""
        count = _Count()
        self._read(side, entity, stats, count, from_start=False)
        return count.records

    def poll_new(
        self, side: Side, entity: EntityType, stats: RunStats | None = None, *, from_start: bool = False
    ) -> list[RecordKey]:
        """Like `poll`, returning the records that got a new version (what now needs deciding).

        `from_start` re-reads everything the side has (the daily sweep) and leaves the cursor alone.
        """
        new: list[RecordKey] = []
        self._read(side, entity, stats, new.extend, from_start=from_start)
        return new

    def poll_side(self, side: Side, stats: RunStats | None = None) -> int:
        """`poll` of every entity on one side (see `poll_side_new`): how many records got a new version."""
        count = _Count()
        self._read_side(side, stats, count)
        return count.records

    def poll_side_new(self, side: Side, stats: RunStats | None = None) -> list[RecordKey]:
        """Every entity's changes on one side, as `poll_new` each would give, in entity order: in one
        read when the connector can read them together (one metered CDC call for QuickBooks rather than
        one per entity), and one entity at a time otherwise or for what that read left incomplete."""
        new: list[RecordKey] = []
        self._read_side(side, stats, new.extend)
        return new

    def _read_side(
        self, side: Side, stats: RunStats | None, found: Callable[[list[RecordKey]], None]
    ) -> None:
        remaining = list(self.entities)
        reader = together_reader(self.connectors[side])
        if reader is not None and len(remaining) > 1:
            started = self.clock.now()
            with self.store.session() as s:
                positions = {e: _position(s.get_cursor(self.connection, side, e)) for e in remaining}
            try:
                pages = reader.read_changes_together(positions, self._journaled(side))
            except (NeedsReauthorizationError, RetriableError) as error:
                log.warning("%s changes not read now: %s", side, error)
                return
            if pages is not None:
                for entity in remaining:
                    self.park(side, pages[entity].rejected, stats)
                with self.store.session() as s:
                    for entity in remaining:
                        self._commit_page(s, side, entity, pages[entity], positions[entity], stats, found)
                for entity in remaining:
                    if pages[entity].complete:
                        found(self.retry_parked(side, entity, started, stats))
                remaining = [e for e in remaining if not pages[e].complete]
        for entity in remaining:
            self._read(side, entity, stats, found, from_start=False)

    def _read(
        self,
        side: Side,
        entity: EntityType,
        stats: RunStats | None,
        found: Callable[[list[RecordKey]], None],
        *,
        from_start: bool,
    ) -> None:
        """`poll_new`'s reading, handing each page's new records to `found`."""
        connector = self.connectors[side]
        started = self.clock.now()
        with self.store.session() as s:
            cursor = None if from_start else s.get_cursor(self.connection, side, entity)
        position = _position(cursor)
        while True:
            try:
                page = connector.read_changes(entity, position, self._journaled(side))
            except (NeedsReauthorizationError, RetriableError) as error:
                # Nothing is lost: the cursor stays where it was and the next poll reads from there.
                log.warning("%s %s changes not read now: %s", side, entity, error)
                return
            self.park(side, page.rejected, stats)
            # The page's events and the cursor past them commit together, in one transaction.
            with self.store.session() as s:
                self._commit_page(s, side, entity, page, position, stats, found, save=not from_start)
            position = page.cursor if page.cursor is not None else position
            if page.complete:
                if not from_start:
                    found(self.retry_parked(side, entity, started, stats))
                return

    def _journaled(self, side: Side) -> Journaled:
        """What the journal holds of `side`'s records, for a connector to leave out unmapped: the
        echoes of our own writes (journaled with their results) and what earlier reads brought."""

        def journaled(entity: EntityType, external_ids: Collection[str]) -> Mapping[str, int]:
            with self.store.session() as s:
                return s.journaled_seqs(self.connection, entity, side, external_ids)

        return journaled

    def _commit_page(
        self,
        s: StoreSession,
        side: Side,
        entity: EntityType,
        page: ChangePage,
        position: str | None,
        stats: RunStats | None,
        found: Callable[[list[RecordKey]], None],
        *,
        save: bool = True,
    ) -> None:
        """Journal a page read from `position` and (when `save`) move the cursor past it, in `s`."""
        results = self.journal_many(s, page.events, stats)
        found([key_of(e) for e, r in zip(page.events, results, strict=True) if r is AppendResult.NEW])
        if save and page.cursor is not None and page.cursor != position:
            s.save_cursor(
                Cursor(
                    connection=self.connection,
                    side=side,
                    entity=entity,
                    position=page.cursor,
                    updated_at=self.clock.now(),
                )
            )

    def park(self, side: Side, rejected: Sequence[Rejection], stats: RunStats | None = None) -> None:
        """Park records a side read but could not hand over; each stays listed until it reads well."""
        if not rejected:
            return
        now = self.clock.now()
        with self.store.session() as s:
            for one in rejected:
                record = ParkedRecord(
                    connection=self.connection,
                    side=side,
                    entity=one.entity,
                    external_id=one.external_id,
                    seq=one.version.seq,
                    reason=one.reason,
                    parked_at=now,
                    checked_at=now,
                )
                if s.park_record(record):
                    log.warning(
                        "%s %s %s parked: %s",
                        side,
                        one.entity,
                        one.external_id,
                        one.reason,
                        extra={
                            "connection": self.connection,
                            "entity": one.entity,
                            "record": one.external_id,
                        },
                    )
                    line = AuditLine(
                        self.connection,
                        one.entity,
                        AuditAction.PARKED,
                        now,
                        side=side,
                        external_id=one.external_id,
                        detail={"version": one.version.seq, "reason": one.reason},
                    )
                    s.audit_many([line])
        if stats is not None:
            stats.rejected += len(rejected)

    def retry_parked(
        self, side: Side, entity: EntityType, before: datetime, stats: RunStats | None = None
    ) -> list[RecordKey]:
        """Read again, by id, a few records parked before `before`; those that read well now are journaled."""
        with self.store.session() as s:
            parked = [p for p in s.parked_records(self.connection, side, entity) if p.checked_at < before][
                :RETRY_PARKED
            ]
        new: list[RecordKey] = []
        for record in parked:
            try:
                event = self.connectors[side].fetch(entity, record.external_id)
            except NotFoundError:
                event = None  # gone for good: nothing is left to sync
            except RecordRejectedError as error:
                # Still bad (the detail says why, as a page's rejection would): checked, and still listed.
                still = {"checked_at": self.clock.now(), "reason": error.detail or error.message}
                with self.store.session() as s:
                    s.park_record(record.model_copy(update=still))
                continue
            except (NeedsReauthorizationError, RetriableError) as error:
                log.warning("parked %s records not read again now: %s", entity, error)
                break
            if event is not None and self.ingest(event, stats) is AppendResult.NEW:
                new.append(key_of(event))
            with self.store.session() as s:
                s.unpark_record(record.key)
        return new

    def decide_pending(self, stats: RunStats | None = None, *, limit: int = 10_000) -> int:
        """Reconcile the records with unprocessed changes (up to `limit`, the longest waiting), in
        dependency order."""
        with self.store.session() as s:
            keys = s.pending_records(self.connection, limit=limit)
        keys.sort(key=lambda k: ORDER.index(k.entity))
        decisions: list[Decision | None] = []
        for start in range(0, len(keys), DECIDE_CHUNK):
            decisions += self._decide_chunk(keys[start : start + DECIDE_CHUNK])
        decided = 0
        for decision in decisions:
            if decision is not None and not decision.plan.waits:
                decided += 1
                if stats is not None:
                    stats.decided += 1
                    stats.conflicted.update((decision.link_id, c.field) for c in decision.plan.conflicts)
        return decided

    def _decide_chunk(self, keys: Sequence[RecordKey]) -> list[Decision | None]:
        """Decide these records in one transaction (one commit for many); if another worker raced one
        of them, that transaction rolls back and each is decided in a transaction of its own."""
        try:
            with self.store.session() as s:
                # Locks many links at once: never wait for one (see StoreSession.lock_link).
                return decide_many(s, keys, self.policy, self.clock.now(), wait=False)
        except VersionConflictError:
            log.debug("a record of this chunk was decided elsewhere meanwhile; deciding one by one")
        decisions: list[Decision | None] = []
        for key in keys:
            try:
                # A worker deciding the same record at once (the kick races the reconcile messages)
                # makes this one decide again on what it committed.
                decisions.append(decide_record(self.store, key, self.policy, self.clock))
            except VersionConflictError as error:
                # Still undecided in the journal: the next sweep takes it again. The rest go on.
                log.warning("%s %s %s not decided now: %s", key.side, key.entity, key.external_id, error)
        return decisions

    def apply_pending(self, stats: RunStats | None = None, *, patience: float | None = None) -> int:
        """Apply every pending op once; returns how many were applied or superseded (progress).

        The pipeline (engine.pipeline) applies them in dependency waves, in concurrent batches where the
        target connector is a BatchWriter, one at a time elsewhere. `patience`: see
        `pipeline.apply_pending` (a worker's kick leaves a held company's writes for later).
        """
        outcomes = pipeline.apply_pending(
            self.store, self.connectors, self.clock, self.connection, patience=patience
        )
        if stats is not None:
            for done in outcomes:
                stats.count(done.outcome)
                if done.refused is not None:
                    stats.conflicted.add(done.refused)  # a value refused (a name taken), now in review
        return sum(done.outcome in (Outcome.APPLIED, Outcome.SUPERSEDED) for done in outcomes)

    def resume_waiting(self) -> int:
        """After a reconnect: ops parked as waiting for authorization go back to pending.

        Only while the connection is connected; a connection that needs re-authorization keeps them.
        """
        now = self.clock.now()
        with self.store.session() as s:
            connection = s.get_connection(self.connection)
            if connection is not None and connection.status is not ConnectionStatus.CONNECTED:
                return 0
            waiting = s.ops(self.connection, [OpStatus.WAITING])
            for record in waiting:
                s.set_op_status(record.op.op_id, OpStatus.PENDING, now)
        return len(waiting)

    def run_once(self, stats: RunStats | None = None) -> int:
        """One pass: poll both sides, decide, apply. Returns a measure of progress (0 means quiet)."""
        # Retries first: a create whose answer was lost must link its record before a poll sees it.
        self.resume_waiting()
        progress = self.apply_pending(stats)
        for side in Side:
            if side in self.connectors:
                progress += self.poll_side(side, stats)
        progress += self.decide_pending(stats)
        progress += self.apply_pending(stats)
        return progress

    def run_until_quiet(self, max_passes: int = 50) -> RunStats:
        """Repeat passes until one makes no progress (or `max_passes`, which means something spins)."""
        stats = RunStats()
        for _ in range(max_passes):
            if self.run_once(stats) == 0:
                return stats
        log.warning("sync did not quiesce after %d passes", max_passes)
        return stats


def _position(cursor: Cursor | None) -> str | None:
    return cursor.position if cursor else None


class _Count:
    """A `found` callback that counts the records instead of keeping them (a backfill's read of a big
    company would hold a key for every record)."""

    def __init__(self) -> None:
        self.records = 0

    def __call__(self, keys: list[RecordKey]) -> None:
        self.records += len(keys)
