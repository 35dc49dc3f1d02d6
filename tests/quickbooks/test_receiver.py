"""The webhook endpoint (verify, store raw, answer at once) and the inbox worker (coalesce, read, ingest)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from connectors.quickbooks.receiver import coalesce, create_receiver_app, process_inbox
from connectors.quickbooks.webhooks import parse_webhook, sign
from engine.clock import FakeClock
from engine.errors import UpstreamUnavailableError
from engine.model import ChangeEvent, EntityType, Side, Version
from engine.ports import StateStore
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
        assert process_inbox(state, {}, lambda event: None).entries == 0


class RecordingReader:
    """A QuickBooks side that answers read_notified from a fixed book, and can fail on demand."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[dict[EntityType, set[str]], datetime | None]] = []
        self.fail = fail

    def read_notified(self, ids: Mapping[EntityType, set[str]], since: datetime | None) -> list[ChangeEvent]:
        self.calls.append(({k: set(v) for k, v in ids.items()}, since))
        if self.fail:
            raise UpstreamUnavailableError("QuickBooks is down")
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
            for external_id in sorted(ids.get(EntityType.CUSTOMER, set()))
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
        reader, ingested = RecordingReader(), []
        report = process_inbox(state, {"111": reader}, ingested.append)
        assert reader.calls == [({EntityType.CUSTOMER: {"1", "2"}}, datetime(2026, 5, 1, 11, 58, tzinfo=UTC))]
        assert sorted(e.external_id for e in ingested) == ["1", "2"]
        assert (report.entries, report.events) == (2, 2)
        assert pending(state) == []

    def test_each_realm_goes_to_its_own_connector_and_unknown_realms_are_reported(
        self, state: StateStore
    ) -> None:
        self.add(state, [cloudevent("Customer", "1", realm="111"), cloudevent("Customer", "5", realm="222")])
        self.add(state, [cloudevent("Customer", "7", realm="333")])
        one, two = RecordingReader(), RecordingReader()
        report = process_inbox(state, {"111": one, "222": two}, lambda event: None)
        assert [c[0] for c in one.calls] == [{EntityType.CUSTOMER: {"1"}}]
        assert [c[0] for c in two.calls] == [{EntityType.CUSTOMER: {"5"}}]
        assert report.unknown_realms == {"333"}

    def test_a_failed_read_leaves_its_bodies_pending_for_the_next_run(self, state: StateStore) -> None:
        self.add(state, [cloudevent("Customer", "1", realm="111")])
        self.add(state, [cloudevent("Customer", "2", realm="222")])
        report = process_inbox(
            state, {"111": RecordingReader(fail=True), "222": RecordingReader()}, lambda e: None
        )
        assert report.failed == {"111": "QuickBooks is down"}
        assert [json.loads(b)[0]["intuitaccountid"] for b in pending(state)] == ["111"]
        assert len(process_inbox(state, {"111": RecordingReader()}, lambda e: None).failed) == 0
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
