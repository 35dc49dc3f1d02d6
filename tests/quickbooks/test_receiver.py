"""The webhook endpoint (verify, store raw, answer at once) and the inbox reader (coalesce, read, journal)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tracemalloc
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from connectors.quickbooks.receiver import (
    MAX_BODY_BYTES,
    QuickBooksInbox,
    coalesce,
    create_receiver_app,
    ingest_inbox,
    store_delivery,
)
from connectors.quickbooks.webhooks import parse_webhook, sign
from engine.clock import FakeClock
from engine.errors import UpstreamUnavailableError
from engine.model import ChangeEvent, EntityType, Side, Version
from engine.ports import Journaled, StateStore
from engine.settings import load_config
from ledgersync.bootstrap import SECTIONS, Runtime
from tests.quickbooks.conftest import running_receiver
from tests.support.stores import fresh_store

TOKEN = "receiver-verifier-token"
PATH = "/webhooks/quickbooks"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def cloudevent(entity: str, entity_id: str, realm: str = "111", op: str = "updated", time: str | None = None):
    return {
        "specversion": "1.0",
        "id": f"evt-{entity}-{entity_id}",
        "source": "intuit.x",
        "type": f"qbo.{entity.lower()}.{op}.v1",
        "time": time or "2026-05-01T11:59:00.000Z",
        "intuitentityid": entity_id,
        "intuitaccountid": realm,
    }


def body_of(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    with fresh_store("sqlite", tmp_path) as store:
        yield store


@pytest.fixture
def http(state: StateStore) -> Iterator[TestClient]:
    with TestClient(create_receiver_app(state, TOKEN, FakeClock(T0))) as client:
        yield client


def post(http: TestClient, body: bytes, signature: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["intuit-signature"] = signature
    return http.post(PATH, content=body, headers=headers).status_code


def pending(state: StateStore) -> list[bytes]:
    with state.session() as s:
        return [entry.body for entry in s.inbox_pending()]


class TestEndpoint:
    def test_a_signed_body_is_stored_raw_and_acknowledged(self, http: TestClient, state: StateStore) -> None:
        body = body_of([cloudevent("Customer", "1")])
        assert post(http, body, sign(body, TOKEN)) == 200
        assert pending(state) == [body]

    @pytest.mark.parametrize("forged", ["missing", "other token", "changed byte"])
    def test_a_bad_signature_gets_401_and_stores_nothing(
        self, http: TestClient, state: StateStore, forged: str
    ) -> None:
        body = body_of([cloudevent("Customer", "1")])
        if forged == "missing":
            status = post(http, body, None)
        elif forged == "other token":
            status = post(http, body, sign(body, "not-our-token"))
        else:
            status = post(http, body.replace(b'"1"', b'"2"'), sign(body, TOKEN))
        assert status == 401
        assert pending(state) == []

    def test_a_signed_malformed_body_is_acknowledged_and_kept_marked_never_pending(
        self, http: TestClient, state: StateStore
    ) -> None:
        body = b"{not json"
        assert post(http, body, sign(body, TOKEN)) == 200
        assert pending(state) == []
        # Kept for a person: the worker finds nothing to do with it, and it did not block the feed.
        assert ingest_inbox(state, {}, FakeClock(T0)).entries == 0


class RecordingReader:
    """A QuickBooks side that answers read_notified from a fixed book, and can fail on demand."""

    connection = "c1"

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[dict[EntityType, set[str]], datetime | None]] = []
        self.fail = fail

    def read_notified(
        self, ids: Mapping[EntityType, set[str]], since: datetime | None, journaled: Journaled | None = None
    ) -> list[ChangeEvent]:
        self.calls.append(({k: set(v) for k, v in ids.items()}, since))
        if self.fail:
            raise UpstreamUnavailableError("QuickBooks is down")
        wanted = ids.get(EntityType.CUSTOMER, set())
        known = journaled(EntityType.CUSTOMER, wanted) if journaled is not None else {}
        return [
            ChangeEvent(
                side=Side.QUICKBOOKS,
                connection="c1",
                entity=EntityType.CUSTOMER,
                external_id=external_id,
                version=Version(seq=1, at=T0),
                observed_at=T0,
                fields={"display_name": f"Customer {external_id}"},
            )
            for external_id in sorted(wanted)
            if known.get(external_id, 0) < 1  # the book's version 1, unless journaled already
        ]


class TestInbox:
    def add(self, state: StateStore, payload: object) -> None:
        with state.session() as s:
            s.inbox_add(body_of(payload), T0)

    def test_ids_from_many_bodies_are_read_with_one_call_per_realm(self, state: StateStore) -> None:
        self.add(state, [cloudevent("Customer", "1"), cloudevent("Vendor", "9")])
        self.add(
            state, [cloudevent("Customer", "2", time="2026-05-01T11:58:00Z"), cloudevent("Customer", "1")]
        )
        reader = RecordingReader()
        report = ingest_inbox(state, {"111": reader}, FakeClock(T0))
        assert reader.calls == [({EntityType.CUSTOMER: {"1", "2"}}, datetime(2026, 5, 1, 11, 58, tzinfo=UTC))]
        assert sorted(key.external_id for key in report.changed) == ["1", "2"]
        assert (report.entries, report.events) == (2, 2)
        assert pending(state) == []
        with state.session() as s:  # journaled, to be decided
            assert {key.external_id for key in s.pending_records("c1")} == {"1", "2"}

    def test_each_realm_goes_to_its_own_connector_and_unknown_realms_are_reported(
        self, state: StateStore
    ) -> None:
        self.add(state, [cloudevent("Customer", "1", realm="111"), cloudevent("Customer", "5", realm="222")])
        self.add(state, [cloudevent("Customer", "7", realm="333")])
        one, two = RecordingReader(), RecordingReader()
        report = ingest_inbox(state, {"111": one, "222": two}, FakeClock(T0))
        assert [c[0] for c in one.calls] == [{EntityType.CUSTOMER: {"1"}}]
        assert [c[0] for c in two.calls] == [{EntityType.CUSTOMER: {"5"}}]
        assert report.unknown_realms == {"333"}

    def test_a_failed_read_leaves_its_bodies_pending_for_the_next_run(self, state: StateStore) -> None:
        self.add(state, [cloudevent("Customer", "1", realm="111")])
        self.add(state, [cloudevent("Customer", "2", realm="222")])
        report = ingest_inbox(
            state, {"111": RecordingReader(fail=True), "222": RecordingReader()}, FakeClock(T0)
        )
        assert report.failed == {"111": "QuickBooks is down"}
        assert [json.loads(b)[0]["intuitaccountid"] for b in pending(state)] == ["111"]
        assert len(ingest_inbox(state, {"111": RecordingReader()}, FakeClock(T0)).failed) == 0
        assert pending(state) == []


def test_coalesce_reads_merged_away_ids_too_and_needs_every_time_to_aim_cdc() -> None:
    merged = {**cloudevent("Customer", "12", op="merged"), "data": {"deletedid": "27"}}
    timeless = {k: v for k, v in cloudevent("Item", "3").items() if k != "time"}
    ids, since = coalesce(list(parse_webhook(body_of([merged])).notifications))
    assert ids == {EntityType.CUSTOMER: {"12", "27"}}
    assert since == datetime(2026, 5, 1, 11, 59, tzinfo=UTC)
    ids, since = coalesce(list(parse_webhook(body_of([merged, timeless])).notifications))
    assert ids == {EntityType.CUSTOMER: {"12", "27"}, EntityType.ITEM: {"3"}}
    assert since is None


def kept(state: StateStore) -> list[tuple[bytes, str | None]]:
    """Bodies kept for a person (malformed ones), newest first, with why."""
    with state.session() as s:
        return [(entry.body, entry.error) for entry in s.inbox_kept()]


def deep(depth: int, opener: str = "[") -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return (opener * depth + "0" + closer * depth).encode()


class TestHostileSignedBodies:
    """Whatever a signed body holds, QuickBooks gets its 200: unanswered, it would hold the feed."""

    @pytest.mark.parametrize(
        ("body", "why"),
        [
            (deep(100_000), "nested too deeply"),
            (deep(100_000, '{"a":'), "nested too deeply"),
            (b"[" + b"9" * 5000 + b"]", "4300 digits"),
            (b'[{"id": "\xff\xfe"}]', "not UTF-8"),
            (b"42", "int"),
            (b'"just a string"', "str"),
            (b"null", "NoneType"),
        ],
        ids=["deep-array", "deep-object", "huge-integer", "invalid-utf8", "number", "string", "null"],
    )
    def test_an_unreadable_body_is_acknowledged_and_kept_with_why(
        self, http: TestClient, state: StateStore, body: bytes, why: str
    ) -> None:
        assert post(http, body, sign(body, TOKEN)) == 200
        assert pending(state) == []
        [(stored, error)] = kept(state)
        assert stored == body
        assert error is not None and error.startswith("malformed: ") and why in error

    def test_wrong_types_at_any_level_are_named_not_crashed_on(
        self, http: TestClient, state: StateStore
    ) -> None:
        nested_id: object = "x"
        for _ in range(900):  # parses, but turning it into text would overflow the stack
            nested_id = [nested_id]
        good = cloudevent("Customer", "7")
        events = [
            {**cloudevent("Customer", "1"), "intuitentityid": nested_id},
            {**cloudevent("Customer", "2"), "type": {"qbo": "customer"}},
            {**cloudevent("Customer", "3"), "intuitaccountid": 1.5, "id": nested_id},
            {**good, "id": nested_id, "data": {"deletedid": {"deep": nested_id}}},
            "not an event",
        ]
        legacy = {"eventNotifications": [{"realmId": ["111"], "dataChangeEvent": {"entities": [nested_id]}}]}
        for payload in (events, legacy):
            body = body_of(payload)
            assert post(http, body, sign(body, TOKEN)) == 200
        # The readable event is kept pending (its notification counts); the legacy body is all bad.
        assert pending(state) == [body_of(events)]
        [(stored, error)] = kept(state)
        assert stored == body_of(legacy) and error == "malformed: notification 0: realmId is missing"
        notes = parse_webhook(body_of(events))
        assert [(n.entity_id, n.event_id, n.deleted_id) for n in notes.notifications] == [("7", None, None)]
        assert notes.problems == (
            "event 0: intuitentityid is missing",
            "event 1: type is missing",
            "event 2: intuitaccountid is missing",
            "event 4: not an object",
        )


class TestBodySizeLimit:
    LIMIT = 1024

    @pytest.fixture
    def small(self, state: StateStore) -> Iterator[TestClient]:
        with TestClient(create_receiver_app(state, TOKEN, FakeClock(T0), max_body=self.LIMIT)) as client:
            yield client

    def test_a_signed_body_over_the_limit_is_kept_unread_with_the_reason(
        self, small: TestClient, state: StateStore
    ) -> None:
        body = body_of([cloudevent("Customer", str(n)) for n in range(40)])
        assert len(body) > self.LIMIT
        assert post(small, body, sign(body, TOKEN)) == 200
        assert pending(state) == []  # never parsed, so never processed: its events are not trusted
        [(stored, error)] = kept(state)
        assert stored == body[: self.LIMIT]
        assert error == (
            f"malformed: body of {len(body)} bytes is over the {self.LIMIT}-byte limit; "
            f"its first {self.LIMIT} bytes are kept, unread"
        )

    def test_a_body_at_the_limit_is_read_as_usual(self, small: TestClient, state: StateStore) -> None:
        body = body_of([cloudevent("Customer", "1")])
        body += b" " * (self.LIMIT - len(body))
        assert post(small, body, sign(body, TOKEN)) == 200
        assert pending(state) == [body]

    def test_an_unsigned_body_over_the_limit_is_refused_and_nothing_is_kept(
        self, small: TestClient, state: StateStore
    ) -> None:
        body = b"[" + b"0," * 5000 + b"0]"
        assert post(small, body, sign(body, "not-our-token")) == 401
        assert post(small, body, None) == 401
        assert pending(state) == [] and kept(state) == []


class TestStreamedOverHttp:
    """Over real HTTP, the way QuickBooks (or anyone) reaches the receiver: a body far over the limit
    is streamed through the signature check, never held, signed or not."""

    CHUNK = b"0," * 32_768  # 64 KiB
    COUNT = 512
    SIZE = len(CHUNK) * COUNT  # 32 MiB

    def chunks(self) -> Iterator[bytes]:
        for _ in range(self.COUNT):
            yield self.CHUNK

    def signature(self, token: str) -> str:
        mac = hmac.new(token.encode(), digestmod=hashlib.sha256)
        for chunk in self.chunks():
            mac.update(chunk)
        return base64.b64encode(mac.digest()).decode()

    @pytest.mark.parametrize("token", [TOKEN, "not-our-token"], ids=["signed", "forged"])
    def test_a_huge_body_costs_the_receiver_no_more_than_the_limit(
        self, state: StateStore, token: str
    ) -> None:
        signature = self.signature(token)
        app = create_receiver_app(state, TOKEN, FakeClock(T0))
        with running_receiver(app) as url, httpx.Client(timeout=60) as client:
            tracemalloc.start()
            try:
                answer = client.post(
                    f"{url}{PATH}", content=self.chunks(), headers={"intuit-signature": signature}
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert answer.status_code == (200 if token == TOKEN else 401)
        # The client side streams too: the peak is the receiver's head (1 MiB), copies and buffers.
        assert peak < 8 * MAX_BODY_BYTES, f"peak {peak} bytes for a {self.SIZE}-byte body"
        if token == TOKEN:
            [(stored, error)] = kept(state)
            assert len(stored) == MAX_BODY_BYTES and stored == (self.CHUNK * 16)[:MAX_BODY_BYTES]
            assert error is not None and f"body of {self.SIZE} bytes is over" in error
        else:
            assert kept(state) == [] and pending(state) == []


def test_the_configured_body_limit_is_the_one_the_web_app_keeps(tmp_path: Path) -> None:
    config = tmp_path / "ledgersync.yaml"
    config.write_text(
        f"state_url: sqlite:///{tmp_path / 'state.db'}\n"
        "connection: acme\n"
        "quickbooks:\n"
        "  client_id: app\n"
        "  client_secret: {env: QBO_CLIENT_SECRET}\n"
        "  webhook_verifier_token: {env: QBO_WEBHOOK_VERIFIER}\n"
        "  webhook_max_body_bytes: 64\n"
    )
    env = {"QBO_CLIENT_SECRET": "secret", "QBO_WEBHOOK_VERIFIER": TOKEN}
    runtime = Runtime(load_config(config, env, SECTIONS))
    try:
        routes = [route for route in runtime.web_routes() if getattr(route, "path", None) == PATH]
        with TestClient(Starlette(routes=routes)) as client:
            body = body_of([cloudevent("Customer", "1")])
            assert post(client, body, sign(body, TOKEN)) == 200
        [(stored, error)] = kept(runtime.store)
        assert stored == body[:64] and error is not None and "over the 64-byte limit" in error
    finally:
        runtime.close()


def runtime_with_webhooks(tmp_path: Path) -> Runtime:
    config = tmp_path / "ledgersync.yaml"
    config.write_text(
        f"state_url: sqlite:///{tmp_path / 'state.db'}\n"
        "quickbooks:\n"
        "  client_id: app\n"
        "  client_secret: {env: QBO_CLIENT_SECRET}\n"
        "  webhook_verifier_token: {env: QBO_WEBHOOK_VERIFIER}\n"
    )
    runtime = Runtime(
        load_config(config, {"QBO_CLIENT_SECRET": "s", "QBO_WEBHOOK_VERIFIER": TOKEN}, SECTIONS)
    )
    from engine.state import Connection

    with runtime.store.session() as s:  # the companies the deliveries are for
        s.save_connection(Connection(id="default", realm_id="111", updated_at=T0))
        s.save_connection(Connection(id="tenant-b", realm_id="222", app_tenant="b", updated_at=T0))
    return runtime


def test_a_stored_delivery_asks_for_a_read_at_once_and_a_refused_one_does_not(tmp_path: Path) -> None:
    runtime = runtime_with_webhooks(tmp_path)
    asked: list[tuple[str, int]] = []

    def on_webhook(connection: str) -> None:
        asked.append((connection, len(pending(runtime.store))))  # called once the body is in the inbox

    try:
        with TestClient(Starlette(routes=runtime.web_routes(on_webhook))) as client:
            body = body_of([cloudevent("Customer", "1")])
            assert post(client, body, sign(body, TOKEN)) == 200
            assert post(client, body, "bm90IGl0") == 401
        assert asked == [("default", 1)]
    finally:
        runtime.close()


def test_a_delivery_naming_two_companies_asks_each_ones_read_and_is_kept_for_each(tmp_path: Path) -> None:
    runtime = runtime_with_webhooks(tmp_path)
    asked: list[str] = []
    try:
        with TestClient(Starlette(routes=runtime.web_routes(asked.append))) as client:
            body = body_of([cloudevent("Customer", "1"), cloudevent("Item", "2", realm="222")])
            assert post(client, body, sign(body, TOKEN)) == 200
        assert asked == ["default", "tenant-b"]
        with runtime.store.session() as s:
            assert [e.realm_id for e in s.inbox_pending(10, "222")] == ["222"]
            assert [e.realm_id for e in s.inbox_pending(10, "111")] == ["111"]
    finally:
        runtime.close()


def test_each_company_reads_only_its_own_deliveries(state: StateStore) -> None:
    from engine.state import Connection

    with state.session() as s:
        s.save_connection(Connection(id="c1", realm_id="111", updated_at=T0))
        s.save_connection(Connection(id="c2", realm_id="222", updated_at=T0))
    store_delivery(
        state, body_of([cloudevent("Customer", "4"), cloudevent("Customer", "9", realm="222")]), T0
    )
    readers: dict[str, RecordingReader] = {}
    inbox = QuickBooksInbox(
        state, FakeClock(T0), lambda connection: readers.setdefault(connection, RecordingReader())
    )
    assert [key.external_id for key in inbox.ingest(connection="c2").changed] == ["9"]
    assert [c.connection for c in inbox.ingest(connection="c2").changed] == []  # its own: all read
    assert [key.external_id for key in inbox.ingest(connection="c1").changed] == ["4"]


def test_a_failed_read_request_still_acknowledges_the_stored_delivery(tmp_path: Path) -> None:
    runtime = runtime_with_webhooks(tmp_path)

    def on_webhook(connection: str) -> None:
        raise ConnectionError("broker down")

    try:
        with TestClient(Starlette(routes=runtime.web_routes(on_webhook))) as client:
            body = body_of([cloudevent("Customer", "2")])
            assert post(client, body, sign(body, TOKEN)) == 200  # kept: the scheduled inbox check reads it
        assert len(pending(runtime.store)) == 1
    finally:
        runtime.close()


def test_the_inbox_port_reads_each_realm_with_the_connector_of_its_connection(state: StateStore) -> None:
    from engine.state import Connection

    with state.session() as s:
        s.save_connection(Connection(id="c1", realm_id="111", updated_at=T0))
        s.save_connection(Connection(id="c2", updated_at=T0))  # not connected: no realm, no reader
        s.inbox_add(body_of([cloudevent("Customer", "4", realm="111")]), T0)
    readers: dict[str, RecordingReader] = {}
    inbox = QuickBooksInbox(
        state, FakeClock(T0), lambda connection: readers.setdefault(connection, RecordingReader())
    )
    report = inbox.ingest()
    assert list(readers) == ["c1"] and [key.external_id for key in report.changed] == ["4"]
    assert inbox.ingest().changed == []  # read: nothing pending


def test_the_companies_with_unread_webhooks_are_found_in_one_query(state: StateStore) -> None:
    """The scheduled inbox check asks a read only for these, not for every one of 200 companies."""
    with state.session() as s:
        assert s.inbox_realms() == set()
        first = s.inbox_add(body_of([cloudevent("Customer", "4", realm="111")]), T0, realm_id="111")
        s.inbox_add(body_of([cloudevent("Customer", "5", realm="222")]), T0, realm_id="222")
        s.inbox_add(body_of([cloudevent("Customer", "6", realm="222")]), T0, realm_id="222")
        assert s.inbox_realms() == {"111", "222"}
        s.inbox_done(first)
        assert s.inbox_realms() == {"222"}
        s.inbox_add(body_of([cloudevent("Customer", "7")]), T0)  # stored before routing by company
        assert s.inbox_realms() == {"222", None}
