"""Reads in seconds on the app side: the outbox triggers' NOTIFY and its listener (PostgreSQL), and the
cheap change probe the scheduler asks every second (both backends, both capture modes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from connectors.app import SqlConnector, parse_mapping
from connectors.app.database import make_engine
from connectors.app.listen import OutboxListener, listener_for
from connectors.app.probe import ChangeProbe
from engine.model import EntityType
from examples.invoicing import create_example_db
from tests.app.conftest import AppDb
from tests.app.test_capture import stamp, user_edit
from tests.app.test_outbox import open_outbox, outbox_mapping, with_triggers
from tests.contract.suite import read_all
from tests.support.stores import postgres_schema, postgres_url

C, ITEM = EntityType.CUSTOMER, EntityType.ITEM


@pytest.fixture
def pg_outbox_db() -> Iterator[AppDb]:
    """A fresh example app with the outbox triggers, in a PostgreSQL schema of its own."""
    with postgres_schema() as schema:
        create_example_db(postgres_url(), schema=schema)
        yield with_triggers(AppDb(postgres_url(), schema))


class Heard:
    """What a listener delivered, with when."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, list[EntityType]]] = []
        self.event = threading.Event()

    def __call__(self, entities: list[EntityType]) -> None:
        self.calls.append((time.monotonic(), entities))
        self.event.set()

    def wait(self, timeout: float) -> list[EntityType]:
        assert self.event.wait(timeout), f"nothing heard within {timeout} s"
        self.event.clear()
        return self.calls[-1][1]


@pytest.fixture
def listening(pg_outbox_db: AppDb) -> Iterator[tuple[SqlConnector, Heard]]:
    connector = open_outbox(pg_outbox_db)
    heard = Heard()
    tables = ["customers", "items"]
    listener = listener_for(connector.engine, connector.mapping.outbox_table, [C, ITEM], heard, tables=tables)
    assert listener is not None
    listener.start()
    try:
        assert listener.listening.wait(10), "the listener never connected"
        assert heard.wait(5) == [C, ITEM]  # on connect: whatever was committed while nobody listened
        yield connector, heard
    finally:
        listener.stop()
        connector.close()


@pytest.mark.postgres
def test_a_commit_is_heard_within_a_second_and_names_its_entity(
    listening: tuple[SqlConnector, Heard],
) -> None:
    connector, heard = listening
    with connector.engine.begin() as conn:
        committing = time.monotonic()
        user_edit(conn, 1, "+1 555 0100", stamp(connector.engine, datetime.now(UTC)))
    assert heard.wait(1.0) == [C]
    assert heard.calls[-1][0] - committing < 1.0
    # ...and the read it asks for finds the change: the notification came after the commit.
    page = connector.read_changes(C, None)
    while not page.complete:
        page = connector.read_changes(C, page.cursor)


@pytest.mark.postgres
def test_a_rolled_back_change_and_an_unlistened_entity_are_not_heard(
    listening: tuple[SqlConnector, Heard],
) -> None:
    connector, heard = listening
    conn = connector.engine.connect()
    try:
        with conn.begin() as tx:
            user_edit(conn, 1, "+1 555 0101", stamp(connector.engine, datetime.now(UTC)))
            tx.rollback()
        with conn.begin():  # invoices are not listened to here
            conn.execute(sa.text("UPDATE invoices SET version = version + 1 WHERE id = 1"))
    finally:
        conn.close()
    assert not heard.event.wait(1.0), heard.calls


@pytest.mark.postgres
def test_many_commits_at_once_are_heard_as_few_calls(listening: tuple[SqlConnector, Heard]) -> None:
    connector, heard = listening
    with connector.engine.begin() as conn:
        for n in range(1, 4):  # three rows, one transaction: PostgreSQL folds equal notifications
            user_edit(conn, n, f"+1 555 02{n:02}", stamp(connector.engine, datetime.now(UTC)))
        conn.execute(sa.text("UPDATE items SET version = version + 1 WHERE id = 1"))
    assert sorted(heard.wait(1.0)) == sorted([C, ITEM])
    time.sleep(0.3)
    assert len(heard.calls) == 2  # the connect call, then one for the transaction


def test_no_listener_without_postgres_or_outbox(sqlite_example: AppDb) -> None:
    engine = make_engine(sqlite_example.url)
    try:
        assert listener_for(engine, "ledgersync_changes", [C], print) is None
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_the_listener_reconnects_and_says_so(pg_outbox_db: AppDb) -> None:
    connector = open_outbox(pg_outbox_db)
    heard = Heard()
    schemas = [str(pg_outbox_db.schema)]
    listener = OutboxListener(
        connector.engine.url, "ledgersync_changes", [C], heard, retry=0.1, schemas=schemas
    ).start()
    try:
        assert listener.listening.wait(10)
        heard.wait(5)
        first = listener.backend_pid
        with connector.engine.connect() as conn:  # the server drops the listener's connection
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        assert heard.wait(10) == [C]  # reconnected: told to read everything it may have missed
        assert listener.backend_pid != first
        with connector.engine.begin() as conn:
            user_edit(conn, 1, "+1 555 0303", stamp(connector.engine, datetime.now(UTC)))
        assert heard.wait(2) == [C]
    finally:
        listener.stop()
        connector.close()


# the probe


def probe_of(connector: SqlConnector) -> ChangeProbe:
    return ChangeProbe(connector.engine, connector.layouts, connector.mapping.outbox_table)


def test_the_probe_names_what_moved_and_nothing_when_idle(example_db: AppDb) -> None:
    with example_db.connector() as connector:
        probe = probe_of(connector)
        assert set(probe.changed()) == set(connector.layouts)  # the first check: everything
        assert probe.changed() == []
        with connector.engine.begin() as conn:
            user_edit(conn, 1, "+1 555 0300", stamp(connector.engine, datetime.now(UTC)))
        assert probe.changed() == [C]
        assert probe.changed() == []


def test_the_probe_of_an_outbox_on_sqlite(sqlite_example: AppDb) -> None:
    with_triggers(sqlite_example)
    engine = make_engine(sqlite_example.url)
    with SqlConnector(parse_mapping(outbox_mapping()), engine) as connector:
        probe = probe_of(connector)
        probe.changed()
        assert probe.changed() == []
        with connector.engine.begin() as conn:
            user_edit(conn, 1, "+1 555 0301", stamp(connector.engine, datetime.now(UTC)))
        assert set(probe.changed()) == set(connector.layouts)  # one outbox: every outbox entity


@pytest.mark.postgres
def test_the_probe_of_an_outbox_on_postgres_names_a_commit_made_while_an_older_transaction_runs(
    pg_outbox_db: AppDb,
) -> None:
    with open_outbox(pg_outbox_db) as connector:
        probe = probe_of(connector)
        probe.changed()
        assert probe.changed() == []
        _, cursor = read_all(connector, C)
        older = connector.engine.connect()
        try:
            blocker = older.begin()
            older.execute(sa.text("SELECT pg_current_xact_id()"))  # the oldest transaction running
            with connector.engine.begin() as conn:
                user_edit(conn, 1, "+1 555 0302", stamp(connector.engine, datetime.now(UTC)))
            assert C in probe.changed()
            # ...and the outbox read takes it at once, with the older transaction still open.
            events, _ = read_all(connector, C, cursor)
            assert [e.fields.get("phone") for e in events] == ["+1 555 0302"]
            blocker.rollback()
        finally:
            older.close()
