"""The QuickBooks webhook endpoint (verify, store the raw body, answer 200 at once) and the inbox worker.

QuickBooks wants a 200 within 3 seconds and holds every later event behind one it could not deliver,
so the endpoint does nothing but check the signature and store the body:

- a bad or missing signature: 401, nothing stored (QuickBooks retries; a forger gets nothing);
- signed but malformed, whatever its shape (not UTF-8, not JSON, nested too deep, wrong types): logged,
  stored with its error already marked (`inbox_done(id, error=...)`, so it is kept for a human and
  never processed), and acknowledged with 200 so it cannot block the feed;
- larger than `max_body` (1 MiB unless configured): the body is read as a stream through the
  signature check and only its first `max_body` bytes are held, so no body can exhaust memory; signed,
  that head is kept as malformed with the reason and acknowledged, never parsed; unsigned, 401;
- the store is down: 503, so QuickBooks delivers it again later (nothing acknowledged is ever lost).

Once a body is stored the route calls `on_stored` (when given): the runtime asks for a read of the
company at once there (coalesced over a short window, `engine.coalesce`), so a change is read in
seconds rather than at the next poll. A failure there is logged and the delivery still acknowledged:
the body is in the inbox, and the scheduled inbox check reads it.

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

from connectors.quickbooks.settings import WEBHOOK_MAX_BODY_BYTES
from connectors.quickbooks.webhooks import (
    SIGNATURE_HEADER,
    Notification,
    SignatureCheck,
    decode_signature,
    parse_webhook,
)
from engine.errors import LedgersyncError
from engine.model import ChangeEvent, EntityType
from engine.ports import Clock, StateStore

log = logging.getLogger(__name__)

DEFAULT_PATH = "/webhooks/quickbooks"
#: The largest body parsed unless configured (`quickbooks.webhook_max_body_bytes`).
MAX_BODY_BYTES = WEBHOOK_MAX_BODY_BYTES
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
    store: StateStore,
    verifier_token: SecretStr | str,
    clock: Clock,
    path: str = DEFAULT_PATH,
    max_body: int = MAX_BODY_BYTES,
    on_stored: Callable[[], object] | None = None,
) -> Route:
    """The POST route QuickBooks delivers to; mount it in the web app. `on_stored` is called after
    each usable body is stored (to ask for a read now)."""
    token = verifier_token.get_secret_value() if isinstance(verifier_token, SecretStr) else verifier_token

    async def receive(request: Request) -> Response:
        signature = request.headers.get(SIGNATURE_HEADER)
        if decode_signature(signature) is None:
            return _refused()  # nothing could match: not worth reading the body
        check = SignatureCheck(token)
        head = bytearray()
        size = 0
        async for chunk in request.stream():
            check.update(chunk)
            size += len(chunk)
            if len(head) < max_body:
                head += chunk[: max_body - len(head)]
        if not check.matches(signature):
            return _refused()
        problem = None if size <= max_body else f"body of {size} bytes is over the {max_body}-byte limit"
        try:
            entry_id = await run_in_threadpool(store_delivery, store, bytes(head), clock.now(), problem)
        except Exception:
            # Unacknowledged, QuickBooks delivers it again: better a held feed than a lost event.
            log.exception("QuickBooks webhook could not be stored; asking for a retry")
            return PlainTextResponse("try again", status_code=503)
        log.debug("QuickBooks webhook stored as inbox entry %d", entry_id)
        if on_stored is not None and problem is None:
            try:
                await run_in_threadpool(on_stored)
            except Exception:
                log.exception("reading QuickBooks now failed; the inbox check reads webhook %d", entry_id)
        return PlainTextResponse("ok")

    return Route(path, receive, methods=["POST"])


def _refused() -> Response:
    log.warning("QuickBooks webhook refused: bad or missing %s", SIGNATURE_HEADER)
    return PlainTextResponse("invalid signature", status_code=401)


def create_receiver_app(
    store: StateStore,
    verifier_token: SecretStr | str,
    clock: Clock,
    path: str = DEFAULT_PATH,
    max_body: int = MAX_BODY_BYTES,
    on_stored: Callable[[], object] | None = None,
) -> Starlette:
    """A Starlette app with just the webhook route (tests, or a receiver run on its own)."""
    return Starlette(routes=[webhook_route(store, verifier_token, clock, path, max_body, on_stored)])


def store_delivery(store: StateStore, body: bytes, now: datetime, problem: str | None = None) -> int:
    """Keep a verified body; a malformed one is kept already marked with its error, never processed.

    `problem` says the body is unusable before it is parsed (too large: `body` is only its head).
    """
    error: str | None
    if problem is not None:
        malformed, error = True, f"{problem}; its first {len(body)} bytes are kept, unread"
    else:
        parsed = parse_webhook(body)
        malformed, error = parsed.malformed, parsed.error
    with store.session() as s:
        entry_id = s.inbox_add(body, now)
        if malformed:
            log.warning("QuickBooks webhook %d is malformed, kept and acknowledged: %s", entry_id, error)
            s.inbox_done(entry_id, error=f"malformed: {error}")
        elif error:
            log.warning("QuickBooks webhook %d has unreadable events: %s", entry_id, error)
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
