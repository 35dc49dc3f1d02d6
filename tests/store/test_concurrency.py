"""Two workers at once: the second waits for the first transaction and then sees its outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from engine.model import EntityType, Side
from engine.state import AppendResult, Connection, RecordKey, Snapshot
from engine.store import SnapshotConflictError, SqlStateStore
from engine.store.session import SqlSession
from tests.support.samples import CONNECTION, at, customer_event

T = TypeVar("T")
CUSTOMER = EntityType.CUSTOMER


def contend(
    store: SqlStateStore, first: Callable[[SqlSession], None], second: Callable[[SqlSession], T]
) -> T:
    """Run `second` in its own session while `first`'s session is still open; assert it waited."""
    first_done = threading.Event()
    release = threading.Event()
    second_finished = threading.Event()

    def hold() -> None:
        with store.session() as s:
            first(s)
            first_done.set()
            assert release.wait(10)

    def follow() -> T:
        assert first_done.wait(10)
        try:
            with store.session() as s:
                return second(s)
        finally:
            second_finished.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        holder = pool.submit(hold)
        follower = pool.submit(follow)
        assert first_done.wait(10)
        time.sleep(0.3)
        waited = not second_finished.is_set()
        release.set()
        holder.result(timeout=10)
        result = follower.result(timeout=10)
    assert waited, "the second session finished while the first still held the record"
    return result


def test_a_second_lock_on_a_link_waits_for_the_first(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", None)

    def first(s: SqlSession) -> None:
        s.lock_link(link.id)
        s.set_link_id(link.id, Side.QUICKBOOKS, "qb-first")

    def second(s: SqlSession) -> str | None:
        s.lock_link(link.id)
        locked = s.get_link(link.id)
        assert locked is not None
        return locked.quickbooks_id

    assert contend(store, first, second) == "qb-first"


def test_the_same_delivery_journaled_twice_at_once_is_one_entry(store: SqlStateStore) -> None:
    event = customer_event(seq=7)
    first_outcome: list[AppendResult] = []
    second_outcome = contend(
        store,
        lambda s: first_outcome.append(s.append_event(event, at(1))),
        lambda s: s.append_event(event, at(2)),
    )
    assert (first_outcome, second_outcome) == ([AppendResult.NEW], AppendResult.DUPLICATE)
    with store.session() as s:
        latest = s.latest_event(
            RecordKey(connection=CONNECTION, side=event.side, entity=CUSTOMER, external_id=event.external_id)
        )
    assert latest is not None
    assert latest.received_at == at(1)


def test_two_saves_from_one_revision_let_the_second_conflict(store: SqlStateStore) -> None:
    with store.session() as s:
        link = s.create_link(CONNECTION, CUSTOMER, "app-1", "qb-1")
        read = s.save_snapshot(Snapshot(link_id=link.id, base={"display_name": "Ada"}))

    def first(s: SqlSession) -> None:
        s.save_snapshot(read.model_copy(update={"base": {"display_name": "First"}}))

    def second(s: SqlSession) -> None:
        s.save_snapshot(read.model_copy(update={"base": {"display_name": "Second"}}))

    with pytest.raises(SnapshotConflictError):
        contend(store, first, second)
    with store.session() as s:
        stored = s.get_snapshot(link.id)
    assert stored is not None
    assert (stored.base, stored.revision) == ({"display_name": "First"}, 2)


def test_a_second_connection_lock_waits_for_the_first_refresh(store: SqlStateStore) -> None:
    with store.session() as s:
        s.save_connection(Connection(id=CONNECTION, realm_id="9130", updated_at=at(0)))

    def first(s: SqlSession) -> None:
        held = s.lock_connection(CONNECTION)
        assert held is not None
        s.save_connection(held.model_copy(update={"tokens_encrypted": b"rotated", "updated_at": at(1)}))

    def second(s: SqlSession) -> bytes | None:
        held = s.lock_connection(CONNECTION)
        assert held is not None
        return held.tokens_encrypted

    assert contend(store, first, second) == b"rotated"
    with store.session() as s:
        assert s.lock_connection("missing") is None
