"""Initial match: before the first sync creates anything, link records that already exist on both sides.

Run once per connection before the runner's first pass (`initial_match(...)`). For each entity, in
dependency order, every unlinked record on each side is read, and an app record is linked to the one
QuickBooks record that has the same value for the policy's first match key that tells them apart
(customers: email, then display name; items: name; invoices: doc number). Matching ignores case and
extra spaces. A value shared by several records on either side links nothing: a wrong link is worse
than a duplicate a person can merge, so those are reported instead.

The store is asked in sets: which records are linked already is one query per entity and side (per
500 ids), and an entity's links, journal entries and audit lines are written with one statement
each. Each link is created together with both sides' current states in the journal (one transaction), so the
runner reconciles the pair with no base: fields that agree settle, fields that differ follow the
conflict policy. Nothing is written to either side here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.model import DEPENDS_ON, ChangeEvent, EntityType, Operation, Side
from engine.ports import Clock, Connector, Policy, StateStore
from engine.state import AuditAction, AuditLine, Link

log = logging.getLogger(__name__)

ORDER = (EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT)
assert all(ORDER.index(dep) < ORDER.index(e) for e in ORDER for dep in DEPENDS_ON[e])
#: Enough pages for any real company; a connector that never completes is a bug, not a big company.
MAX_PAGES = 100_000


@dataclass
class MatchReport:
    linked: dict[EntityType, list[tuple[str, str]]] = field(default_factory=dict)
    #: (entity, key, value) shared by more than one record on a side: left for a person.
    ambiguous: list[tuple[EntityType, str, str]] = field(default_factory=list)

    def count(self, entity: EntityType) -> int:
        return len(self.linked.get(entity, []))


def initial_match(
    store: StateStore,
    connection: str,
    app: Connector,
    quickbooks: Connector,
    policy: Policy,
    clock: Clock,
    entities: Iterable[EntityType] = ORDER,
) -> MatchReport:
    """Link records present on both sides by the policy's match keys; journal both states of each pair."""
    report = MatchReport()
    wanted = set(entities)
    for entity in (e for e in ORDER if e in wanted):
        keys = policy.match_keys(entity)
        if not keys:
            continue
        qbo_records = _unlinked(
            store, connection, entity, Side.QUICKBOOKS, read_everything(quickbooks, entity)
        )
        # A company with nothing unlinked (a new one, the usual first backfill) has nothing to match:
        # the app's records are not read for it (the backfill reads them once, to copy them).
        app_records: dict[str, ChangeEvent] = {}
        if qbo_records:
            app_records = _unlinked(store, connection, entity, Side.APP, read_everything(app, entity))
        pairs = match_records(entity, keys, app_records, qbo_records, report)
        now = clock.now()
        links = [
            Link(id=uuid.uuid4().hex, connection=connection, entity=entity, app_id=a, quickbooks_id=q)
            for a, q in pairs
        ]
        with store.session() as s:
            # A few statements for the whole entity: links, both sides' states, one audit line each.
            s.create_links(links)
            s.append_events([e for a, q in pairs for e in (app_records[a], qbo_records[q])], now)
            s.audit_many(
                [
                    AuditLine(
                        connection,
                        entity,
                        AuditAction.DECIDED,
                        now,
                        link_id=link.id,
                        detail={"reason": "initial match", "app_id": a, "quickbooks_id": q},
                    )
                    for link, (a, q) in zip(links, pairs, strict=True)
                ]
            )
        report.linked[entity] = pairs
        log.info("initial match linked %d %s records", len(pairs), entity, extra={"connection": connection})
    return report


def match_records(
    entity: EntityType,
    keys: tuple[str, ...],
    app_records: Mapping[str, ChangeEvent],
    qbo_records: Mapping[str, ChangeEvent],
    report: MatchReport | None = None,
) -> list[tuple[str, str]]:
    """(app id, QuickBooks id) pairs: each key in turn links what it identifies uniquely on both sides."""
    app_left, qbo_left = dict(app_records), dict(qbo_records)
    pairs: list[tuple[str, str]] = []
    for key in keys:
        app_index = _index(app_left, key)
        qbo_index = _index(qbo_left, key)
        for value, app_ids in sorted(app_index.items()):
            qbo_ids = qbo_index.get(value, [])
            if not qbo_ids:
                continue
            if len(app_ids) > 1 or len(qbo_ids) > 1:
                if report is not None:
                    report.ambiguous.append((entity, key, value))
                continue
            pairs.append((app_ids[0], qbo_ids[0]))
            del app_left[app_ids[0]], qbo_left[qbo_ids[0]]
    return pairs


def read_everything(connector: Connector, entity: EntityType) -> dict[str, ChangeEvent]:
    """The newest state of every record of `entity` on that side (deleted ones left out)."""
    newest: dict[str, ChangeEvent] = {}
    cursor = None
    for _ in range(MAX_PAGES):
        page = connector.read_changes(entity, cursor)
        for event in page.events:
            known = newest.get(event.external_id)
            if known is None or event.version.seq >= known.version.seq:
                newest[event.external_id] = event
        cursor = page.cursor
        if page.complete:
            return {i: e for i, e in newest.items() if e.operation is Operation.UPSERT}
    raise RuntimeError(f"{connector.side} never finished reading {entity}")


def normalized(value: Any) -> str | None:
    """A match key value compared without case or extra spaces; None (no match) when empty."""
    if value is None:
        return None
    text = " ".join(str(value).split()).casefold()
    return text or None


def _index(records: Mapping[str, ChangeEvent], key: str) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for external_id, event in records.items():
        value = normalized(event.fields.get(key))
        if value is not None:
            index.setdefault(value, []).append(external_id)
    return index


def _unlinked(
    store: StateStore, connection: str, entity: EntityType, side: Side, records: Mapping[str, ChangeEvent]
) -> dict[str, ChangeEvent]:
    """`records` less those already linked: one set query (per 500 ids), not one per record."""
    with store.session() as s:
        linked = s.links_of(connection, entity, side, records.keys())
    return {external_id: event for external_id, event in records.items() if external_id not in linked}
