"""The journaling runner: capture changes, journal them, decide, apply; in-process, until quiet.

Each step is idempotent and keyed by ids in the store, so the same functions back the Dramatiq actors:
a lost message or a killed worker loses nothing, the journal and the ops table are re-scanned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.apply import Outcome, apply_op
from engine.apply_batch import apply_batch, batch_groups, replays_a_batch
from engine.decide import decide
from engine.errors import NeedsReauthorizationError, RetriableError
from engine.model import DEPENDS_ON, ChangeEvent, EntityType, Side
from engine.plan import OpKind, OpStatus
from engine.ports import Clock, Connector, Policy, StateStore, batch_writer
from engine.state import AppendResult, AuditAction, Connection, ConnectionStatus, Cursor, OpRecord, RecordKey

log = logging.getLogger(__name__)

#: Entities in dependency order: customers and items before invoices, invoices before payments.
ORDER: tuple[EntityType, ...] = (EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT)
assert all(ORDER.index(dep) < ORDER.index(e) for e in ORDER for dep in DEPENDS_ON[e])
#: Entities whose creates may share a batch: they reference nothing another create could produce.
BATCHABLE = frozenset(e for e in ORDER if not DEPENDS_ON[e])


@dataclass
class RunStats:
    captured: int = 0
    duplicates: int = 0
    stale: int = 0
    decided: int = 0
    applied: int = 0
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


def key_of(event: ChangeEvent) -> RecordKey:
    return RecordKey(
        connection=event.connection, side=event.side, entity=event.entity, external_id=event.external_id
    )


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
        self.entities = tuple(e for e in ORDER if e in entities)
        with store.session() as s:
            if s.get_connection(connection) is None:
                s.save_connection(Connection(id=connection, updated_at=clock.now()))

    def ingest(self, event: ChangeEvent, stats: RunStats | None = None) -> AppendResult:
        """Journal one event (duplicates are no-ops, older versions change nothing)."""
        now = self.clock.now()
        with self.store.session() as s:
            result = s.append_event(event, now)
            if result is not AppendResult.DUPLICATE:
                action = AuditAction.CAPTURED if result is AppendResult.NEW else AuditAction.STALE
                s.audit(
                    event.connection,
                    event.entity,
                    action,
                    now,
                    side=event.side,
                    external_id=event.external_id,
                    detail={"version": event.version.seq},
                )
        if stats is not None:
            stats.captured += result is AppendResult.NEW
            stats.duplicates += result is AppendResult.DUPLICATE
            stats.stale += result is AppendResult.STALE
        return result

    def poll(self, side: Side, entity: EntityType, stats: RunStats | None = None) -> int:
        """Read one side's changes from its cursor; the cursor moves only past what was journaled."""
        return len(self.poll_new(side, entity, stats))

    def poll_new(
        self, side: Side, entity: EntityType, stats: RunStats | None = None, *, from_start: bool = False
    ) -> list[RecordKey]:
        """Like `poll`, returning the records that got a new version (what now needs deciding).

        `from_start` re-reads everything the side has (the daily sweep) and leaves the cursor alone.
        """
        connector = self.connectors[side]
        with self.store.session() as s:
            cursor = None if from_start else s.get_cursor(self.connection, side, entity)
        position = cursor.position if cursor else None
        new: list[RecordKey] = []
        while True:
            try:
                page = connector.read_changes(entity, position)
            except (NeedsReauthorizationError, RetriableError) as error:
                # Nothing is lost: the cursor stays where it was and the next poll reads from there.
                log.warning("%s %s changes not read now: %s", side, entity, error)
                return new
            for event in page.events:
                if self.ingest(event, stats) is AppendResult.NEW:
                    new.append(key_of(event))
            moved = page.cursor is not None and page.cursor != position
            position = page.cursor if page.cursor is not None else position
            if moved and not from_start:
                with self.store.session() as s:
                    s.save_cursor(
                        Cursor(
                            connection=self.connection,
                            side=side,
                            entity=entity,
                            position=position,
                            updated_at=self.clock.now(),
                        )
                    )
            if page.complete:
                return new

    def decide_pending(self, stats: RunStats | None = None) -> int:
        """Reconcile every record with unprocessed changes, in dependency order."""
        with self.store.session() as s:
            keys = s.pending_records(self.connection, limit=10_000)
        keys.sort(key=lambda k: ORDER.index(k.entity))
        decided = 0
        for key in keys:
            with self.store.session() as s:
                decision = decide(s, key, self.policy, self.clock.now())
            if decision is not None and not decision.plan.waits:
                decided += 1
                if stats is not None:
                    stats.decided += 1
                    stats.conflicted.update((decision.link_id, c.field) for c in decision.plan.conflicts)
        return decided

    def apply_pending(self, stats: RunStats | None = None) -> int:
        """Apply every pending op once; returns how many were applied or superseded (progress).

        Creates of customers and items go in batches when the target connector is a BatchWriter with a
        batch size above 1 (they depend on nothing but each other's absence); everything else, and every
        op for a connector without batches, is written one at a time.
        """
        with self.store.session() as s:
            pending = s.ops(self.connection, [OpStatus.PENDING])
        pending.sort(key=lambda r: ORDER.index(r.op.entity))
        outcomes: list[str] = []
        singles = []
        batchable: dict[Side, list[OpRecord]] = {}
        for record in pending:
            op = record.op
            if op.kind is OpKind.CREATE and op.entity in BATCHABLE and batch_writer(self.connectors[op.side]):
                batchable.setdefault(op.side, []).append(record)
            else:
                singles.append(record)
        for side, records in batchable.items():
            writer = batch_writer(self.connectors[side])
            assert writer is not None
            by_id = {r.op.op_id: r for r in records}
            for group in batch_groups(records, writer.capabilities().batch_size):
                if len(group) == 1 and not replays_a_batch(by_id[group[0]]):
                    # A lone create costs a metered batch call for nothing: single writes are free.
                    outcomes.append(apply_op(self.store, writer, group[0], self.clock.now()).outcome)
                    continue
                applied = apply_batch(self.store, writer, group, self.clock.now())
                outcomes.extend(a.outcome for a in applied.values())
        for record in singles:
            connector = self.connectors[record.op.side]
            outcomes.append(apply_op(self.store, connector, record.op.op_id, self.clock.now()).outcome)
        if stats is not None:
            for outcome in outcomes:
                stats.count(outcome)
        return sum(outcome in (Outcome.APPLIED, Outcome.SUPERSEDED) for outcome in outcomes)

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
        for entity in self.entities:
            for side in Side:
                if side in self.connectors:
                    progress += self.poll(side, entity, stats)
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
