"""The QuickBooks webhook endpoint (verify, store the raw body, answer 200 at once) and the inbox reader.

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

`receive_webhook` does that and says what it stored; it calls nothing else. The composition layer
(`ledgersync.bootstrap`) mounts it and, after a stored delivery, asks for a read of the company
(coalesced, `engine.coalesce`), so a change is read in seconds rather than at the next poll.

`ingest_inbox` then reads the pending bodies, groups their ids by realm (one body may carry several
companies), reads each realm's records with one CDC call (a read per id where CDC cannot help),
journals them (`engine.journal`) and marks the bodies done. Re-running it is harmless: the journal
drops duplicate events. `QuickBooksInbox` is the engine's `Inbox` port over it, for the workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

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
from engine.journal import journal_events, key_of
from engine.model import ChangeEvent, EntityType, Side
from engine.ports import Clock, Journaled, StateStore
from engine.state import AppendResult, InboxReport

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

    @property
    def connection(self) -> str: ...

    def read_notified(
        self, ids: Mapping[EntityType, set[str]], since: datetime | None, journaled: Journaled | None = None
    ) -> list[ChangeEvent]: ...


@dataclass(frozen=True)
class Received:
    """What `receive_webhook` did with one delivery."""

    response: Response
    #: The inbox entry the body went to, if it was stored (its first, when it names several companies).
    entry_id: int | None = None
    #: Stored whole (not cut at the size limit): worth reading now.
    complete: bool = False
    #: The companies (realm ids) the delivery names: whose reads to ask for.
    realms: tuple[str, ...] = ()


async def receive_webhook(
    request: Request,
    store: StateStore,
    token: str,
    clock: Clock,
    max_body: int = MAX_BODY_BYTES,
) -> Received:
    """Check the signature over the streamed body and store it (see the module doc)."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if decode_signature(signature) is None:
        return Received(_refused())  # nothing could match: not worth reading the body
    check = SignatureCheck(token)
    head = bytearray()
    size = 0
    async for chunk in request.stream():
        check.update(chunk)
        size += len(chunk)
        if len(head) < max_body:
            head += chunk[: max_body - len(head)]
    if not check.matches(signature):
        return Received(_refused())
    problem = None if size <= max_body else f"body of {size} bytes is over the {max_body}-byte limit"
    try:
        stored = await run_in_threadpool(store_delivery, store, bytes(head), clock.now(), problem)
    except Exception:
        # Unacknowledged, QuickBooks delivers it again: better a held feed than a lost event.
        log.exception("QuickBooks webhook could not be stored; asking for a retry")
        return Received(PlainTextResponse("try again", status_code=503))
    log.debug("QuickBooks webhook stored as inbox entry %d", stored.entry_id, extra={"realms": stored.realms})
    return Received(PlainTextResponse("ok"), stored.entry_id, problem is None, stored.realms)


def secret_text(token: SecretStr | str) -> str:
    return token.get_secret_value() if isinstance(token, SecretStr) else token


def webhook_route(
    store: StateStore,
    verifier_token: SecretStr | str,
    clock: Clock,
    path: str = DEFAULT_PATH,
    max_body: int = MAX_BODY_BYTES,
) -> Route:
    """The POST route QuickBooks delivers to, storing and nothing more (a receiver run on its own,
    tests); the runtime mounts its own, which also asks for a read (`ledgersync.bootstrap`)."""
    token = secret_text(verifier_token)

    async def receive(request: Request) -> Response:
        return (await receive_webhook(request, store, token, clock, max_body)).response

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
) -> Starlette:
    """A Starlette app with just the webhook route (tests, or a receiver run on its own)."""
    return Starlette(routes=[webhook_route(store, verifier_token, clock, path, max_body)])


class Delivery(NamedTuple):
    """Where `store_delivery` kept a body: its first inbox entry, and the companies it names."""

    entry_id: int
    realms: tuple[str, ...] = ()


def store_delivery(store: StateStore, body: bytes, now: datetime, problem: str | None = None) -> Delivery:
    """Keep a verified body, once per company it names (each company's read takes its own); a
    malformed one is kept once, already marked with its error, never processed.

    `problem` says the body is unusable before it is parsed (too large: `body` is only its head).
    """
    error: str | None
    realms: tuple[str, ...] = ()
    if problem is not None:
        malformed, error = True, f"{problem}; its first {len(body)} bytes are kept, unread"
    else:
        parsed = parse_webhook(body)
        malformed, error = parsed.malformed, parsed.error
        realms = tuple(dict.fromkeys(n.realm_id for n in parsed.notifications))
    with store.session() as s:
        ids = [s.inbox_add(body, now, realm) for realm in realms] or [s.inbox_add(body, now)]
        if malformed:
            log.warning("QuickBooks webhook %d is malformed, kept and acknowledged: %s", ids[0], error)
            s.inbox_done(ids[0], error=f"malformed: {error}")
        elif error:
            log.warning("QuickBooks webhook %d has unreadable events: %s", ids[0], error)
    return Delivery(ids[0], realms if not malformed else ())


def ingest_inbox(
    store: StateStore,
    readers: Mapping[str, NotifiedReader],
    clock: Clock,
    *,
    limit: int = 100,
    only: str | None = None,
) -> InboxReport:
    """Read the records pending webhooks name, per realm (`readers` by realm id), journal them, and
    mark the webhooks done (those of a realm whose read failed stay pending, to retry). `only` (a realm): only
    that company's deliveries (and any stored before deliveries were routed by company)."""
    with store.session() as s:
        entries = s.inbox_pending(limit, only)
    report = InboxReport(entries=len(entries))
    by_realm: dict[str, list[Notification]] = {}
    realms_of: dict[int, set[str]] = {}
    problems: dict[int, str] = {}
    for entry in entries:
        parsed = parse_webhook(entry.body)
        if parsed.error:
            problems[entry.id] = parsed.error
        # An entry stored for one company reads that company's notifications only (its body may name
        # others, stored again for them).
        notes = [n for n in parsed.notifications if entry.realm_id in (None, n.realm_id)]
        realms_of[entry.id] = {n.realm_id for n in notes}
        for note in notes:
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

        def journaled(
            entity: EntityType, external_ids: Collection[str], reader: NotifiedReader = reader
        ) -> Mapping[str, int]:
            with store.session() as s:
                return s.journaled_seqs(reader.connection, entity, Side.QUICKBOOKS, external_ids)

        try:
            # The read's overlap brings back versions journaled already: they are not mapped again.
            events = reader.read_notified(ids, since, journaled)
        except LedgersyncError as exc:
            log.warning("reading notified records of realm %s failed, will retry: %s", realm, exc)
            report.failed[realm] = str(exc)
            continue
        with store.session() as s:  # the read's events in one transaction, as a poll's page
            results = journal_events(s, events, clock.now())
        report.changed += [key_of(e) for e, r in zip(events, results, strict=True) if r is AppendResult.NEW]
        report.events += len(events)
    with store.session() as s:
        for entry in entries:
            if realms_of[entry.id] & set(report.failed):
                continue
            s.inbox_done(entry.id, error=problems.get(entry.id))
    return report


class QuickBooksInbox:
    """The engine's `Inbox` port over the stored webhooks: each realm's records are read by the
    QuickBooks connector of the connection that holds the realm (`connector(connection id)`)."""

    def __init__(self, store: StateStore, clock: Clock, connector: Callable[[str], NotifiedReader]) -> None:
        self.store = store
        self.clock = clock
        self.connector = connector

    def ingest(self, limit: int = 100, connection: str | None = None) -> InboxReport:
        with self.store.session() as s:
            connections = s.list_connections()
        realms = {c.realm_id: c.id for c in connections if c.realm_id}
        readers = {realm: self.connector(connection) for realm, connection in realms.items()}
        only = None
        if connection is not None:
            only = next((c.realm_id for c in connections if c.id == connection), None)
            if only is None:
                return InboxReport()  # not connected to a company: nothing of its own to read
        return ingest_inbox(self.store, readers, self.clock, limit=limit, only=only)


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
