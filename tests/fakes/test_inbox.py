"""The fake inbox honours the Inbox port: it journals what is pending once, and a failed read keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.fakes.inbox import FakeInbox
from engine.store import SqlStateStore
from tests.support.samples import CONNECTION, at, customer_event
from tests.support.stores import fresh_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    with fresh_store("sqlite", tmp_path) as fresh:
        yield fresh


def test_a_failed_read_keeps_the_notifications_and_the_next_journals_each_once(store: SqlStateStore) -> None:
    inbox = FakeInbox(store, FakeClock(at(1)))
    inbox.notify(customer_event("1"))
    inbox.notify(customer_event("1"))  # delivered twice
    inbox.fail_next = 1
    failed = inbox.ingest()
    assert failed.failed and failed.changed == [] and failed.entries == 2
    report = inbox.ingest()
    assert [key.external_id for key in report.changed] == ["1"] and report.events == 2
    assert inbox.ingest().entries == 0 and inbox.reads == 3
    with store.session() as s:
        assert [key.external_id for key in s.pending_records(CONNECTION)] == ["1"]
