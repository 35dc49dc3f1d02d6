"""The journal: duplicate deliveries are no-ops, older versions are recorded but never reconciled."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.model import EntityType, Side
from engine.state import AppendResult, JournalStatus, RecordKey
from engine.store import NotStoredError, SqlStateStore
from tests.support.samples import CONNECTION, at, customer_event, item_event

KEY = RecordKey(connection=CONNECTION, side=Side.QUICKBOOKS, entity=EntityType.CUSTOMER, external_id="42")


def test_unseen_event_is_new_and_round_trips(store: SqlStateStore) -> None:
    event = customer_event(seq=3)
    with store.session() as s:
        assert s.append_event(event, at(10)) is AppendResult.NEW
    with store.session() as s:
        entry = s.latest_event(KEY)
    assert entry is not None
    assert entry.event == event
    assert entry.status is JournalStatus.NEW
    assert entry.received_at == at(10)


def test_same_version_again_is_a_duplicate_and_changes_nothing(store: SqlStateStore) -> None:
    with store.session() as s:
        assert s.append_event(customer_event(seq=3), at(1)) is AppendResult.NEW
        s.mark_processed(KEY, 3)
    with store.session() as s:
        again = customer_event(seq=3, name="Different Payload")
        assert s.append_event(again, at(2)) is AppendResult.DUPLICATE
        entry = s.latest_event(KEY)
    assert entry is not None
    assert entry.event.fields["display_name"] == "Ada Lovelace"
    assert entry.status is JournalStatus.PROCESSED
    assert entry.received_at == at(1)


def test_older_version_is_recorded_stale_and_ignored(store: SqlStateStore) -> None:
    with store.session() as s:
        assert s.append_event(customer_event(seq=5), at(1)) is AppendResult.NEW
        s.mark_processed(KEY, 5)
        assert s.append_event(customer_event(seq=4, name="Older"), at(2)) is AppendResult.STALE
        # Stale entries are kept: a second delivery of the same old version is a duplicate of it.
        assert s.append_event(customer_event(seq=4, name="Older"), at(3)) is AppendResult.DUPLICATE
        latest = s.latest_event(KEY)
        pending = s.pending_records(CONNECTION)
    assert latest is not None
    assert latest.event.version.seq == 5
    assert pending == []


def test_latest_event_skips_stale_and_keeps_processed(store: SqlStateStore) -> None:
    with store.session() as s:
        s.append_event(customer_event(seq=1), at(1))
        s.append_event(customer_event(seq=2, name="Second"), at(2))
        s.mark_processed(KEY, 2)
        s.append_event(customer_event(seq=1), at(3))
        latest = s.latest_event(KEY)
        nothing = s.latest_event(KEY.model_copy(update={"external_id": "nope"}))
    assert latest is not None
    assert (latest.event.version.seq, latest.status) == (2, JournalStatus.PROCESSED)
    assert nothing is None


def test_pending_records_are_distinct_oldest_first_and_per_connection(store: SqlStateStore) -> None:
    with store.session() as s:
        s.append_event(customer_event("b", 1), at(1))
        s.append_event(customer_event("a", 1), at(2))
        s.append_event(customer_event("b", 2), at(3))
        s.append_event(customer_event("a", 1, side=Side.APP), at(4))
        s.append_event(customer_event("z", 1, connection="other"), at(5))
        pending = s.pending_records(CONNECTION)
        first_two = s.pending_records(CONNECTION, limit=2)
        counted, counted_other = s.count_pending_records(CONNECTION), s.count_pending_records("other")
    assert (counted, counted_other) == (3, 1), "counted as listed, without loading them"
    assert [(k.external_id, k.side) for k in pending] == [
        ("b", Side.QUICKBOOKS),
        ("a", Side.QUICKBOOKS),
        ("a", Side.APP),
    ]
    assert all(k.connection == CONNECTION and k.entity is EntityType.CUSTOMER for k in pending)
    assert first_two == pending[:2]


def test_pending_records_look_past_a_record_with_many_new_versions(store: SqlStateStore) -> None:
    # The list is read in pages of new entries; a record with more new versions than a page holds
    # must not hide the records behind it, nor be listed twice.
    with store.session() as s:
        for seq in range(1, 30):
            s.append_event(customer_event("busy", seq), at(seq))
        s.append_event(customer_event("next", 1), at(40))
        s.append_event(customer_event("last", 1), at(41))
        s.append_event(customer_event("busy", 30), at(42))
        pending = s.pending_records(CONNECTION, limit=2)
        everything = s.pending_records(CONNECTION, limit=5)
    assert [k.external_id for k in pending] == ["busy", "next"]
    assert [k.external_id for k in everything] == ["busy", "next", "last"]


def test_mark_processed_stops_at_the_given_seq(store: SqlStateStore) -> None:
    with store.session() as s:
        for seq in (1, 2, 3):
            s.append_event(customer_event(seq=seq), at(seq))
        s.mark_processed(KEY, 2)
        still_pending = s.pending_records(CONNECTION)
        latest = s.latest_event(KEY)
    assert still_pending == [KEY]
    assert latest is not None
    assert (latest.event.version.seq, latest.status) == (3, JournalStatus.NEW)
    with store.session() as s:
        s.mark_processed(KEY, 3)
        assert s.pending_records(CONNECTION) == []
        assert s.count_pending_records(CONNECTION) == 0


def test_money_and_deletes_survive_the_journal(store: SqlStateStore) -> None:
    item = item_event(price="1234567.89")
    gone = customer_event(seq=9, delete=True)
    with store.session() as s:
        s.append_event(item, at(1))
        s.append_event(gone, at(2))
    with store.session() as s:
        stored_item = s.latest_event(
            RecordKey(connection=CONNECTION, side=Side.APP, entity=EntityType.ITEM, external_id="7")
        )
        stored_delete = s.latest_event(KEY)
    assert stored_item is not None
    assert stored_item.event.fields["unit_price"] == Decimal("1234567.89")
    assert stored_item.event == item
    assert stored_delete is not None
    assert stored_delete.event == gone


def test_app_versions_in_microseconds_fit(store: SqlStateStore) -> None:
    # The app's updated_at in microseconds since the epoch overflows a 32-bit integer.
    seq = 1_777_000_000_000_000
    with store.session() as s:
        assert s.append_event(customer_event(seq=seq), at(1)) is AppendResult.NEW
        latest = s.latest_event(KEY)
    assert latest is not None
    assert latest.event.version.seq == seq


def test_inbox_keeps_raw_bodies_until_done(store: SqlStateStore) -> None:
    body = b'{"eventNotifications": []}\x00\xff'
    with store.session() as s:
        first = s.inbox_add(body, at(1))
        second = s.inbox_add(b"{}", at(2))
    with store.session() as s:
        pending = s.inbox_pending()
        assert [e.id for e in pending] == [first, second]
        assert pending[0].body == body
        assert pending[0].received_at == at(1)
        assert not pending[0].processed
        assert [e.id for e in s.inbox_pending(limit=1)] == [first]
        s.inbox_done(first)
        s.inbox_done(second, error="bad signature")
    with store.session() as s:
        assert s.inbox_pending() == []
    with pytest.raises(NotStoredError), store.session() as s:
        s.inbox_done(second + 1000)
