"""The QuickBooks webhook endpoint (verify, store the raw body, answer 200 at once) and the inbox worker.

QuickBooks wants a 200 within 3 seconds and holds every later event behind one it could not deliver,
so the endpoint does nothing but check the signature and store the body:

- a bad or missing signature: 401, nothing stored (QuickBooks retries; a forger gets nothing);
- signed but malformed: logged, stored with its error already marked (`inbox_done(id, error=...)`, so
  it is kept for a human and never processed), and acknowledged with 200 so it cannot block the feed;
- the store is down: 503, so QuickBooks delivers it again later (nothing acknowledged is ever lost).

`process_inbox` then reads the pending bodies, groups their ids by realm (one body may carry several
companies) and reads each realm's records with one CDC call (a read per id where CDC cannot help),
hands the events to `ingest` (the runner's, so they are journaled and audited), and marks the bodies
done. Re-running it is harmless: the journal drops duplicate events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from connectors.quickbooks.webhooks import SIGNATURE_HEADER, Notification, parse_webhook, verify_signature
from engine.errors import LedgersyncError
from engine.model import ChangeEvent, EntityType
from engine.ports import Clock, StateStore

log = logging.getLogger(__name__)

DEFAULT_PATH = "/webhooks/quickbooks"
ENTITIES: Mapping[str, EntityType] = {
    "Customer": EntityType.CUSTOMER,
    "Item": EntityType.ITEM,
    "Invoice": EntityType.INVOICE,
    "Payment": EntityType.PAYMENT,
}


class NotifiedReader(Protocol):
    """What the inbox needs from a QuickBooks connector (`QboConnector.read_notified`)."""

    def read_notified(
        self, ids: Mapping[EntityType, set[str]], since: datetime | None
    ) -> list[ChangeEvent]: ...


def webhook_route(
    store: StateStore, verifier_token: SecretStr | str, clock: Clock, path: str = DEFAULT_PATH
) -> Route:
    """The POST route QuickBooks delivers to; mount it in the web app."""
    token = verifier_token.get_secret_value() if isinstance(verifier_token, SecretStr) else verifier_token

    async def receive(request: Request) -> Response:
        body = await request.body()
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), token):
            log.warning("QuickBooks webhook refused: bad or missing %s", SIGNATURE_HEADER)
            return PlainTextResponse("invalid signature", status_code=401)
        try:
            entry_id = await run_in_threadpool(store_delivery, store, body, clock.now())
        except Exception:
            # Unacknowledged, QuickBooks delivers it again: better a held feed than a lost event.
            log.exception("QuickBooks webhook could not be stored; asking for a retry")
            return PlainTextResponse("try again", status_code=503)
        log.debug("QuickBooks webhook stored as inbox entry %d", entry_id)
        return PlainTextResponse("ok")

    return Route(path, receive, methods=["POST"])


def create_receiver_app(
    store: StateStore, verifier_token: SecretStr | str, clock: Clock, path: str = DEFAULT_PATH
) -> Starlette:
    """A Starlette app with just the webhook route (tests, or a receiver run on its own)."""
    return Starlette(routes=[webhook_route(store, verifier_token, clock, path)])


def store_delivery(store: StateStore, body: bytes, now: datetime) -> int:
    """Keep a verified body; a malformed one is kept already marked with its error, never processed."""
    parsed = parse_webhook(body)
    with store.session() as s:
        entry_id = s.inbox_add(body, now)
        if parsed.malformed:
            log.warning(
                "QuickBooks webhook %d is malformed, kept and acknowledged: %s", entry_id, parsed.error
            )
            s.inbox_done(entry_id, error=f"malformed: {parsed.error}")
        elif parsed.problems:
            log.warning("QuickBooks webhook %d has unreadable events: %s", entry_id, parsed.error)
    return entry_id


@dataclass
class InboxReport:
    entries: int = 0
    events: int = 0
    #: Realm -> why its records could not be read now (those entries stay pending, to retry).
    failed: dict[str, str] = field(default_factory=dict)
    #: Realms no connector is configured for (their notifications are dropped, with a warning).
    unknown_realms: set[str] = field(default_factory=set)


def process_inbox(
    store: StateStore,
    readers: Mapping[str, NotifiedReader],
    ingest: Callable[[ChangeEvent], object],
    *,
    limit: int = 100,
) -> InboxReport:
    """Read the records pending webhooks name, per realm (`readers` by realm id), and `ingest` them."""
    with store.session() as s:
        entries = s.inbox_pending(limit)
    report = InboxReport(entries=len(entries))
    by_realm: dict[str, list[Notification]] = {}
    realms_of: dict[int, set[str]] = {}
    problems: dict[int, str] = {}
    for entry in entries:
        parsed = parse_webhook(entry.body)
        if parsed.error:
            problems[entry.id] = parsed.error
        realms_of[entry.id] = {n.realm_id for n in parsed.notifications}
        for note in parsed.notifications:
            by_realm.setdefault(note.realm_id, []).append(note)
    for realm, notes in by_realm.items():
        reader = readers.get(realm)
        if reader is None:
            log.warning("QuickBooks webhook for realm %s, which no connection uses: ignored", realm)
            report.unknown_realms.add(realm)
            continue
        ids, since = coalesce(notes)
        if not ids:
            continue
        try:
            events = reader.read_notified(ids, since)
        except LedgersyncError as exc:
            log.warning("reading notified records of realm %s failed, will retry: %s", realm, exc)
            report.failed[realm] = str(exc)
            continue
        for event in events:
            ingest(event)
        report.events += len(events)
    with store.session() as s:
        for entry in entries:
            if realms_of[entry.id] & set(report.failed):
                continue
            s.inbox_done(entry.id, error=problems.get(entry.id))
    return report


def coalesce(notes: list[Notification]) -> tuple[dict[EntityType, set[str]], datetime | None]:
    """The synced records the notifications name (merged-away ids too), and the earliest change time
    (None when a notification has none: CDC cannot be aimed, the records are read one by one)."""
    ids: dict[EntityType, set[str]] = {}
    times: list[datetime] = []
    timeless = False
    for note in notes:
        entity = ENTITIES.get(note.entity)
        if entity is None:
            continue
        ids.setdefault(entity, set()).add(note.entity_id)
        if note.deleted_id:
            ids[entity].add(note.deleted_id)
        if note.last_updated is None:
            timeless = True
        else:
            times.append(note.last_updated)
    since = None if timeless or not times else min(times)
    return ids, since
