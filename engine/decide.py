"""One reconcile decision for one record, persisted in one transaction: the shell around `reconcile`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from engine.errors import VersionConflictError
from engine.model import MODELS, EntityType, Side, fields_from_json, fields_to_json
from engine.plan import Op, OpStatus, Plan, Write
from engine.ports import Clock, Policy, StateStore, StoreSession
from engine.reconcile import Ledger, SideState, reconcile
from engine.refs import refs_in, to_links
from engine.refusals import hold_refused, refusals
from engine.state import (
    AuditAction,
    AuditLine,
    Conflict,
    JournalEntry,
    LedgerEntry,
    Link,
    Processed,
    RecordKey,
    Snapshot,
)

log = logging.getLogger(__name__)

#: Op statuses that hold a record: no new plan until they are done (one plan at a time per record).
BLOCKING = (OpStatus.PENDING, OpStatus.WAITING, OpStatus.PARKED)


def link_for(s: StoreSession, key: RecordKey) -> Link:
    link = s.find_link(key.connection, key.entity, key.side, key.external_id)
    if link is not None:
        return link
    ids = {key.side: key.external_id, key.side.other: None}
    return s.create_link(key.connection, key.entity, ids[Side.APP], ids[Side.QUICKBOOKS])


def side_state(s: StoreSession, link: Link, side: Side) -> SideState | None:
    """The newest journaled state of the linked record on `side`, refs translated to links."""
    external_id = link.external_id(side)
    if external_id is None:
        return None
    entry = s.latest_event(
        RecordKey(connection=link.connection, side=side, entity=link.entity, external_id=external_id)
    )
    if entry is None:
        return None
    event = entry.event
    if event.operation == "delete":
        return SideState(external_id=external_id, version=event.version, fields=None)

    def link_of(entity: EntityType, ext: str) -> str | None:
        found = s.find_link(link.connection, entity, side, ext)
        return found.id if found else None

    return SideState(
        external_id=external_id, version=event.version, fields=to_links(event.fields, side, link_of)
    )


def _ledger(link: Link, entries: Mapping[Side, Sequence[LedgerEntry]]) -> Ledger:
    """The versions our writes produced on each side of the link, with the values each sent."""
    result: dict[tuple[Side, int], Mapping[str, Any]] = {}
    for side, mine in entries.items():
        for entry in mine:
            written = {name: entry.values.get(name) for name in entry.fields}
            result[(side, entry.seq)] = fields_from_json(link.entity, written) if entry.values else written
    return result


class Decision(NamedTuple):
    link_id: str
    plan: Plan
    #: The ops persisted for the plan's writes, to enqueue once the transaction commits.
    op_ids: tuple[str, ...]


def decide(
    s: StoreSession, key: RecordKey, policy: Policy, now: datetime, *, wait: bool = True
) -> Decision | None:
    """Reconcile the record behind `key` and persist the decision; None when it must wait its turn.

    `wait=False`: None too while another worker holds the record (see `decide_many`).
    """
    return decide_many(s, [key], policy, now, wait=wait)[0]


def decide_many(
    s: StoreSession, keys: Sequence[RecordKey], policy: Policy, now: datetime, *, wait: bool = True
) -> list[Decision | None]:
    """Reconcile the records behind `keys` (one connection's) and persist the decisions, in sets.

    What the decisions need (links, snapshots, newest journal entries, ledger entries, blocking ops,
    open conflicts) is read in a few statements for all of them, each record is reconciled (pure),
    and the snapshots, ops, audit lines and journal statuses are written with one statement each.
    One result per key, in order: None when the record must wait its turn (its earlier plan is still
    being applied, a create on its side is in flight, it was deleted), when another key of `keys`
    named the same record first (it is decided once, with both sides' newest states), or, with
    `wait=False`, while another worker holds it: a transaction deciding many records never waits
    for one of them; the holder's own follow-up, or the next sweep, decides it.
    """
    if not keys:
        return []
    connection = keys[0].connection
    if any(k.connection != connection for k in keys):
        raise ValueError("decide_many takes the keys of one connection")
    batch = _Batch(s, connection, now)
    link_of_key = batch.links_for(keys)
    links = batch.lock(link_of_key, wait)
    chosen: dict[str, RecordKey] = {}
    for key in keys:
        link_id = link_of_key.get(key)
        if link_id is not None and link_id in links and link_id not in chosen:
            chosen[link_id] = key
    snapshots = s.snapshots_of([i for i in chosen if i not in batch.new_links])
    live: list[Link] = []
    for link_id, key in chosen.items():
        snapshot = snapshots.get(link_id)
        if snapshot is not None and snapshot.tombstone:
            batch.ignore_deleted(key, links[link_id])
        else:
            live.append(links[link_id])
    blocked = s.blocked_links(connection, [link.id for link in live], BLOCKING) if live else set()
    # Its earlier plan is still being applied: this change is picked up after.
    live = [link for link in live if link.id not in blocked]
    ledgers = batch.ledgers(live)
    states = batch.states(live, ledgers)
    open_conflicts = s.open_conflicts_of([link.id for link in live]) if live else {}
    decided: dict[str, Decision] = {}
    for link in live:
        snapshot = snapshots.get(link.id) or Snapshot(link_id=link.id)
        mine = states[link.id]
        base = fields_from_json(link.entity, snapshot.base) if snapshot.base is not None else None
        ledger = ledgers[link.id]
        plan = reconcile(link.entity, base, mine[Side.APP], mine[Side.QUICKBOOKS], policy, ledger)
        # A value a side refused (a name another record holds) waits for the reviewer: sent again, it
        # would only be refused again.
        open_here = open_conflicts.get(link.id, [])
        refused = refusals(s, link, open_here) if open_here else {}
        plan, held = hold_refused(link.entity, plan, refused)
        op_ids = batch.persist(link, snapshot, mine, plan, ledger, open_here, held)
        decided[link.id] = Decision(link.id, plan, op_ids)
    batch.flush(stored=snapshots.keys())
    results: list[Decision | None] = []
    for key in keys:
        link_id = link_of_key.get(key)
        results.append(decided.get(link_id) if link_id is not None and chosen.get(link_id) == key else None)
    return results


class _Batch:
    """The reads and the pending writes of one `decide_many` call."""

    def __init__(self, s: StoreSession, connection: str, now: datetime) -> None:
        self.s = s
        self.connection = connection
        self.now = now
        self.new_links: dict[str, Link] = {}
        self.snapshots: list[Snapshot] = []
        self.ops: list[Op] = []
        self.audits: list[AuditLine] = []
        self.processed: list[Processed] = []

    def links_for(self, keys: Sequence[RecordKey]) -> dict[RecordKey, str]:
        """Each key's link id: found, or created now (none while a create on its side is in flight)."""
        wanted: dict[tuple[EntityType, Side], set[str]] = {}
        for key in keys:
            wanted.setdefault((key.entity, key.side), set()).add(key.external_id)
        found: dict[tuple[EntityType, Side, str], Link] = {}
        for (entity, side), ids in wanted.items():
            for external_id, link in self.s.links_of(self.connection, entity, side, ids).items():
                found[(entity, side, external_id)] = link
        result: dict[RecordKey, str] = {}
        in_flight: set[tuple[Side, EntityType]] | None = None
        for key in keys:
            known = found.get((key.entity, key.side, key.external_id))
            if known is not None:
                result[key] = known.id
            else:
                if in_flight is None:
                    in_flight = self.s.creates_in_flight(
                        self.connection, (OpStatus.PENDING, OpStatus.WAITING)
                    )
                if (key.side, key.entity) in in_flight:
                    # An unknown record on a side we are creating on could be our own create whose
                    # answer was lost; deciding now would copy it back as new. Wait until the
                    # create resolves and links it.
                    continue
                own = {key.side: key.external_id, key.side.other: None}
                link = Link(
                    id=uuid.uuid4().hex,
                    connection=self.connection,
                    entity=key.entity,
                    app_id=own[Side.APP],
                    quickbooks_id=own[Side.QUICKBOOKS],
                )
                found[(key.entity, key.side, key.external_id)] = link
                self.new_links[link.id] = link
                result[key] = link.id
        self.s.create_links(list(self.new_links.values()))
        return result

    def lock(self, link_of_key: Mapping[RecordKey, str], wait: bool) -> dict[str, Link]:
        """Hold the links, read again under the lock: an apply that held one may have just set its
        other id (a create landed), and the copy read before would take that new record for a
        deleted one. Links made by this transaction are held already."""
        existing = {i for i in link_of_key.values() if i not in self.new_links}
        locked = self.s.lock_links(existing, wait=wait) if existing else {}
        return {**locked, **self.new_links}

    def ignore_deleted(self, key: RecordKey, link: Link) -> None:
        entry = self.s.latest_event(key)
        self.processed.append(Processed(key, entry.event.version.seq if entry else 0))
        self.audits.append(
            AuditLine(
                key.connection,
                key.entity,
                AuditAction.STALE,
                self.now,
                link_id=link.id,
                side=key.side,
                external_id=key.external_id,
                detail={"reason": "record was deleted; change ignored"},
            )
        )

    def states(
        self, links: Sequence[Link], ledgers: Mapping[str, Ledger]
    ) -> dict[str, dict[Side, SideState | None]]:
        """The newest journaled state of each link's record on each side, refs translated to links;
        where that version is our own write, with the time a person last changed the record."""
        entries: dict[tuple[EntityType, Side], dict[str, JournalEntry]] = {}
        for (entity, side), ids in _ids_by_group(links).items():
            entries[(entity, side)] = self.s.latest_events_of(self.connection, entity, side, ids)
        echoed: dict[tuple[EntityType, Side], set[str]] = {}
        for link in links:
            for side in Side:
                external_id = link.external_id(side)
                newest = None if external_id is None else entries[(link.entity, side)].get(external_id)
                if newest is not None and (side, newest.event.version.seq) in ledgers[link.id]:
                    echoed.setdefault((link.entity, side), set()).add(newest.event.external_id)
        edited: dict[tuple[EntityType, Side], dict[str, datetime]] = {
            (entity, side): self.s.user_edits_of(self.connection, entity, side, ids)
            for (entity, side), ids in echoed.items()
        }
        refs: dict[tuple[EntityType, Side], set[str]] = {}
        for (_, side), found in entries.items():
            for entry in found.values():
                for entity, ref_id in refs_in(entry.event.fields):
                    refs.setdefault((entity, side), set()).add(ref_id)
        linked: dict[tuple[EntityType, Side], dict[str, Link]] = {
            (entity, side): self.s.links_of(self.connection, entity, side, ids)
            for (entity, side), ids in refs.items()
        }
        result: dict[str, dict[Side, SideState | None]] = {}
        for link in links:
            mine: dict[Side, SideState | None] = {}
            for side in Side:
                external_id = link.external_id(side)
                newest = None if external_id is None else entries[(link.entity, side)].get(external_id)
                if newest is None:
                    mine[side] = None
                    continue
                ours = (side, newest.event.version.seq) in ledgers[link.id]
                user_at = (
                    edited[(link.entity, side)].get(newest.event.external_id)
                    if ours
                    else newest.event.version.at
                )
                mine[side] = _state(newest, side, linked, user_at)
            result[link.id] = mine
        return result

    def ledgers(self, links: Sequence[Link]) -> dict[str, Ledger]:
        found: dict[tuple[EntityType, Side], dict[str, list[LedgerEntry]]] = {}
        for (entity, side), ids in _ids_by_group(links).items():
            found[(entity, side)] = self.s.ledger_of_records(self.connection, entity, side, ids)
        result: dict[str, Ledger] = {}
        for link in links:
            mine: dict[Side, Sequence[LedgerEntry]] = {}
            for side in Side:
                external_id = link.external_id(side)
                if external_id is not None:
                    mine[side] = found[(link.entity, side)].get(external_id, [])
            result[link.id] = _ledger(link, mine)
        return result

    def persist(
        self,
        link: Link,
        snapshot: Snapshot,
        states: Mapping[Side, SideState | None],
        plan: Plan,
        ledger: Ledger,
        open_here: Sequence[Conflict],
        held: frozenset[str],
    ) -> tuple[str, ...]:
        """Queue the decision's writes (conflicts, rare, are written at once: they need their ids)."""
        base: dict[str, Any] | None = snapshot.base
        if plan.settled:
            base = {**(base or {}), **fields_to_json(link.entity, plan.settled)}
        seqs = {side: (st.version.seq if st else snapshot.seq(side)) for side, st in states.items()}
        self.snapshots.append(
            snapshot.model_copy(
                update={
                    "base": base,
                    "app_seq": seqs[Side.APP],
                    "quickbooks_seq": seqs[Side.QUICKBOOKS],
                    "tombstone": plan.tombstone and not plan.writes,
                }
            )
        )
        op_ids: list[str] = []
        for write in plan.writes:
            op = op_for(link, write)
            self.ops.append(op)
            op_ids.append(op.op_id)
            self._audit(
                link,
                AuditAction.DECIDED,
                side=write.side,
                external_id=write.external_id,
                detail={
                    "op_id": op.op_id,
                    "kind": write.kind,
                    "fields": sorted(write.fields),
                    "reason": write.reason,
                },
            )
        for conflict in plan.conflicts:
            stored = conflict.model_copy(
                update={
                    "base": _json(link.entity, conflict.field, conflict.base),
                    "app": _json(link.entity, conflict.field, conflict.app),
                    "quickbooks": _json(link.entity, conflict.field, conflict.quickbooks),
                }
            )
            opened = self.s.open_conflict(link.connection, link.id, link.entity, stored, self.now)
            self._audit(
                link,
                AuditAction.CONFLICT,
                detail={"conflict_id": opened.id, "field": conflict.field, "policy": conflict.policy},
            )
        if not plan.waits:
            self._close_settled(link, plan, open_here, held)
        for wait in plan.waits:
            self._audit(
                link,
                AuditAction.DECIDED,
                side=wait.side,
                detail={"waits_for": wait.depends_on.model_dump(mode="json"), "reason": wait.reason},
            )
        if plan.empty:
            echo = any(st is not None and (side, st.version.seq) in ledger for side, st in states.items())
            self._audit(
                link,
                AuditAction.ECHO_DROPPED if echo else AuditAction.DECIDED,
                detail={"reasons": list(plan.reasons) or ["nothing to do"]},
            )
        if not plan.waits:
            for side, state in states.items():
                if state is not None:
                    key = RecordKey(
                        connection=link.connection,
                        side=side,
                        entity=link.entity,
                        external_id=state.external_id,
                    )
                    self.processed.append(Processed(key, state.version.seq))
        log.debug(
            "decided %s link=%s writes=%d conflicts=%d",
            link.entity,
            link.id,
            len(plan.writes),
            len(plan.conflicts),
        )
        return tuple(op_ids)

    def _close_settled(
        self, link: Link, plan: Plan, open_here: Sequence[Conflict], held: frozenset[str]
    ) -> None:
        """An open conflict whose field no longer conflicts (the sides agree now, or one side went
        back to the base) needs no reviewer any more."""
        still = {c.field for c in plan.conflicts} | held
        written = {k: v for w in plan.writes for k, v in w.fields.items()}
        for conflict in open_here:
            if conflict.field in still:
                continue
            value = _json(
                link.entity, conflict.field, plan.settled.get(conflict.field, written.get(conflict.field))
            )
            by = "ledgersync: sides agree"
            self.s.resolve_conflict(conflict.id, value, by, self.now)
            self.audits.append(resolved_line(link, conflict, by, self.now))

    def _audit(self, link: Link, action: AuditAction, **kwargs: Any) -> None:
        self.audits.append(
            AuditLine(link.connection, link.entity, action, self.now, link_id=link.id, **kwargs)
        )

    def flush(self, stored: Collection[str]) -> None:
        """Write what the decisions queued: snapshots, ops, audit lines, journal statuses."""
        self.s.save_snapshots(self.connection, self.snapshots, stored)
        self.s.add_ops(self.ops, self.now)
        self.s.audit_many(self.audits)
        self.s.mark_processed_many(self.processed)


def _ids_by_group(links: Iterable[Link]) -> dict[tuple[EntityType, Side], set[str]]:
    groups: dict[tuple[EntityType, Side], set[str]] = {}
    for link in links:
        for side in Side:
            external_id = link.external_id(side)
            if external_id is not None:
                groups.setdefault((link.entity, side), set()).add(external_id)
    return groups


def _state(
    entry: JournalEntry,
    side: Side,
    linked: Mapping[tuple[EntityType, Side], Mapping[str, Link]],
    user_at: datetime | None,
) -> SideState:
    event = entry.event
    if event.operation == "delete":
        return SideState(external_id=event.external_id, version=event.version, fields=None, user_at=user_at)

    def link_of(entity: EntityType, ext: str) -> str | None:
        found = linked.get((entity, side), {}).get(ext)
        return found.id if found else None

    return SideState(
        external_id=event.external_id,
        version=event.version,
        fields=to_links(event.fields, side, link_of),
        user_at=user_at,
    )


def decide_record(
    store: StateStore, key: RecordKey, policy: Policy, clock: Clock, attempts: int = 3
) -> Decision | None:
    """`decide` in a transaction of its own; decided again, in a new one, when another worker's
    transaction won a race on the record (linked it, or opened its conflict, first). The last
    attempt's VersionConflictError is raised."""
    for attempt in range(1, attempts + 1):
        try:
            with store.session() as s:
                return decide(s, key, policy, clock.now())
        except VersionConflictError as error:
            if attempt == attempts:
                raise
            log.debug("deciding %s again (attempt %d): %s", key, attempt + 1, error)
    raise AssertionError("attempts must be at least 1")


def op_for(link: Link, write: Write) -> Op:
    """A planned write as a persisted op, with its stable id (QuickBooks' requestid)."""
    return Op(
        op_id=uuid.uuid4().hex,
        connection=link.connection,
        link_id=link.id,
        entity=link.entity,
        side=write.side,
        kind=write.kind,
        external_id=write.external_id,
        fields=write.fields,
        expected_seq=write.expected_seq,
        reason=write.reason,
    )


def close_conflict(
    s: StoreSession, link: Link, conflict: Conflict, value: Any, by: str, now: datetime, **detail: Any
) -> Conflict:
    """Resolve `conflict` with `value` (JSON form) and say so in the record's history."""
    resolved = s.resolve_conflict(conflict.id, value, by, now)
    s.audit_many([resolved_line(link, conflict, by, now, **detail)])
    return resolved


def resolved_line(link: Link, conflict: Conflict, by: str, now: datetime, **detail: Any) -> AuditLine:
    """The history line of `conflict` resolved `by` someone (or ledgersync itself)."""
    return AuditLine(
        link.connection,
        link.entity,
        AuditAction.RESOLVED,
        now,
        link_id=link.id,
        detail={"conflict_id": conflict.id, "field": conflict.field, "by": by, **detail},
    )


def _json(entity: EntityType, field: str, value: Any) -> Any:
    if field not in MODELS[entity].model_fields:
        return value  # a pseudo-field such as `_deleted`
    return fields_to_json(entity, {field: value})[field]
