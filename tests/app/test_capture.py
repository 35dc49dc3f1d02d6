"""Change capture: nothing missed when app transactions commit out of order, overlap and de-duplication,
deletes as the app makes them."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.app import SqlConnector, parse_mapping
from connectors.app.codec import Codec
from connectors.app.database import make_engine
from connectors.app.records import Reader, Stored
from engine.clock import FakeClock
from engine.model import ChangeEvent, EntityType, Operation, Ref, Side
from tests.app.conftest import AppDb
from tests.app.test_mapping_errors import mapping_with
from tests.contract.suite import create, latest, read_all

CUSTOMER = EntityType.CUSTOMER


@contextmanager
def connector_with(db: AppDb, path: str, value: Any, **options: Any) -> Iterator[SqlConnector]:
    engine = make_engine(db.url, schema=db.schema)
    try:
        with SqlConnector(parse_mapping(mapping_with(path, value)), engine, **options) as connector:
            yield connector
    finally:
        engine.dispose()


def stamp(engine: sa.Engine, at: datetime) -> Any:
    return Codec(engine.dialect.name).write_timestamp(at)


def user_edit(conn: sa.Connection, customer_id: int, phone: str, at: Any) -> None:
    """What the app does on a user's edit: the change, its version and updated_at, in its transaction."""
    conn.execute(
        sa.text(
            "UPDATE customers SET phone = :phone, version = version + 1, updated_at = :at,"
            " changed_by = 'user' WHERE id = :id"
        ),
        {"phone": phone, "at": at, "id": customer_id},
    )


def versions(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {str(i): v for i, v in conn.execute(sa.text("SELECT id, version FROM customers"))}


@contextmanager
def overlapping(db: AppDb) -> Iterator[tuple[SqlConnector, str, sa.Engine, FakeClock]]:
    """A connector reading customers with a 5 s overlap on a fake clock, its cursor after a first
    full read, and an engine for the app's own edits."""
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    with connector_with(db, "entities.customer.capture", {"overlap_seconds": 5}, clock=clock) as c:
        _, cursor = read_all(c, CUSTOMER)
        engine = make_engine(db.url)
        try:
            yield c, cursor, engine, clock
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_a_transaction_committing_a_lower_updated_at_after_a_higher_one_was_read_is_not_missed(
    fresh_pg_example: AppDb,
) -> None:
    # No overlap at all: only the late-commit tracking can find the row.
    with connector_with(fresh_pg_example, "entities.customer.capture", {"overlap_seconds": 0}) as connector:
        _, cursor = read_all(connector, CUSTOMER)
        engine = make_engine(fresh_pg_example.url, schema=fresh_pg_example.schema)
        try:
            now = datetime.now(UTC)
            slow, fast = engine.connect(), engine.connect()
            slow.begin()
            user_edit(slow, 1, "555-0001", stamp(engine, now))  # the lower updated_at, still uncommitted
            with fast.begin():
                user_edit(fast, 2, "555-0002", stamp(engine, now + timedelta(seconds=1)))
            fast.close()
            first, cursor = read_all(connector, CUSTOMER, cursor)
            assert [e.external_id for e in first] == ["2"]
            slow.commit()
            slow.close()
            later, cursor = read_all(connector, CUSTOMER, cursor)
            assert [(e.external_id, e.fields["phone"]) for e in later] == [("1", "555-0001")]
            again, _ = read_all(connector, CUSTOMER, cursor)
            assert again == []
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_concurrent_app_writers_committing_out_of_order_lose_no_change(fresh_pg_example: AppDb) -> None:
    """Writer threads stamp updated_at, then hold their transaction open up to 250 ms before committing;
    a reader polls all along. Every row's final version must be read."""
    db = fresh_pg_example
    engine = make_engine(db.url, schema=db.schema)
    done = threading.Event()
    seen: dict[str, ChangeEvent] = {}

    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO customers (display_name, updated_at) VALUES (:name, :at)"),
            [{"name": f"Client n°{n}", "at": stamp(engine, datetime.now(UTC))} for n in range(40)],
        )
        ids = list(conn.execute(sa.text("SELECT id FROM customers ORDER BY id")).scalars())

    def writer(seed: int) -> None:
        # Each row is edited once, so a missed commit leaves its row's last version unread.
        rng = random.Random(seed)
        for customer_id in ids[seed::4]:
            with engine.begin() as conn:
                user_edit(conn, customer_id, f"555-{seed}", stamp(engine, datetime.now(UTC)))
                time.sleep(rng.uniform(0, 0.25))

    def reader(connector: SqlConnector) -> None:
        cursor: str | None = None
        while True:
            finished = done.is_set()
            events, cursor = read_all(connector, CUSTOMER, cursor)
            seen.update(latest(list(seen.values()) + events))
            if finished:
                return
            time.sleep(0.005)

    try:
        # The overlap covers the few milliseconds between stamping and the UPDATE, far less than
        # the transactions are held open: only the late-commit tracking can find those.
        with connector_with(db, "entities.customer.capture", {"overlap_seconds": 0.05}) as connector:
            writers = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
            polling = threading.Thread(target=reader, args=(connector,))
            polling.start()
            for thread in writers:
                thread.start()
            for thread in writers:
                thread.join()
            done.set()
            polling.join()
        assert {i: e.version.seq for i, e in seen.items()} == versions(engine)
    finally:
        engine.dispose()


def test_sqlite_a_late_commit_inside_the_overlap_is_read_once(sqlite_example: AppDb) -> None:
    with overlapping(sqlite_example) as (c, start, engine, clock):
        with engine.begin() as conn:
            user_edit(conn, 2, "555-0002", stamp(engine, clock.now()))
        first, cursor = read_all(c, CUSTOMER, start)
        with engine.begin() as conn:  # stamped two seconds before the edit already read
            user_edit(conn, 1, "555-0001", stamp(engine, clock.now() - timedelta(seconds=2)))
        clock.advance(1)
        later, cursor = read_all(c, CUSTOMER, cursor)
        again, _ = read_all(c, CUSTOMER, cursor)
    assert [e.external_id for e in first] == ["2"]
    assert [e.external_id for e in later] == ["1"]  # customer 2 re-read in the overlap, and dropped
    assert again == []


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the app rows decoded from here on, in order."""
    seen: list[str] = []
    real = Reader._stored

    def spy(self: Reader, layout: Any, row: Any, kids: Any, now: datetime, stamp: Any) -> Stored:
        seen.append(str(row["_pk"]))
        return real(self, layout, row, kids, now, stamp)

    monkeypatch.setattr(Reader, "_stored", spy)
    return seen


def test_rows_the_overlap_brings_again_are_not_decoded_again(
    sqlite_example: AppDb, decoded: list[str]
) -> None:
    with overlapping(sqlite_example) as (c, start, engine, clock):
        with engine.begin() as conn:
            user_edit(conn, 2, "555-0002", stamp(engine, clock.now()))
        clock.advance(1)
        decoded.clear()
        first, cursor = read_all(c, CUSTOMER, start)
        assert decoded == ["2"] and [e.fields["phone"] for e in first] == ["555-0002"]
        with engine.begin() as conn:
            user_edit(conn, 1, "555-0001", stamp(engine, clock.now()))
        clock.advance(1)
        decoded.clear()
        later, cursor = read_all(c, CUSTOMER, cursor)
        assert [e.external_id for e in later] == ["1"]
        assert decoded == ["1"], "customer 2, read again in the overlap, was decoded again"
        with engine.begin() as conn:  # a new version of a row in the overlap is read and decoded
            user_edit(conn, 2, "555-0022", stamp(engine, clock.now()))
        clock.advance(1)
        decoded.clear()
        again, _ = read_all(c, CUSTOMER, cursor)
        assert [(e.external_id, e.fields["phone"]) for e in again] == [("2", "555-0022")]
        assert decoded == ["2"]


def test_rows_at_a_version_the_journal_holds_are_stepped_over_undecoded(
    sqlite_example: AppDb, decoded: list[str]
) -> None:
    # Our own writes' echoes: their results were journaled when written, so a read leaves them out.
    journal: dict[str, int] = {}
    asked: list[tuple[EntityType, list[str]]] = []

    def journaled(entity: EntityType, ids: Any) -> dict[str, int]:
        asked.append((entity, sorted(ids)))
        return {i: journal[i] for i in ids if i in journal}

    with overlapping(sqlite_example) as (c, start, engine, clock):
        with engine.begin() as conn:
            user_edit(conn, 1, "555-0001", stamp(engine, clock.now()))  # "ours": journaled below
            user_edit(conn, 2, "555-0002", stamp(engine, clock.now()))  # a person's
        journal["1"] = versions(engine)["1"]
        clock.advance(1)
        decoded.clear()
        page = c.read_changes(CUSTOMER, start, journaled)
        assert page.complete and [e.external_id for e in page.events] == ["2"]
        assert decoded == ["2"] and asked == [(CUSTOMER, ["1", "2"])]
        with engine.begin() as conn:  # a later version of the journaled row is read as usual
            user_edit(conn, 1, "555-0011", stamp(engine, clock.now()))
        clock.advance(1)
        decoded.clear()
        again = c.read_changes(CUSTOMER, page.cursor, journaled)
        assert [(e.external_id, e.fields["phone"]) for e in again.events] == [("1", "555-0011")]
        assert decoded == ["1"]


def test_the_cursor_never_moves_past_the_start_of_the_read(sqlite_example: AppDb) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    with connector_with(
        sqlite_example, "entities.customer.capture", {"overlap_seconds": 0}, clock=clock
    ) as c:
        engine = make_engine(sqlite_example.url)
        try:
            with engine.begin() as conn:  # an app server whose clock runs an hour ahead
                user_edit(conn, 3, "555-0003", stamp(engine, clock.now() + timedelta(hours=1)))
        finally:
            engine.dispose()
        events, cursor = read_all(c, CUSTOMER)
        assert "3" in {e.external_id for e in events}
    high = json.loads(cursor)["rows"]["high"]
    assert high <= int(clock.now().timestamp() * 1_000_000)


def test_a_hard_delete_the_app_records_in_its_tombstone_table_reads_as_a_delete(example_db: AppDb) -> None:
    with example_db.connector() as connector:
        customer = Ref(entity=CUSTOMER, id="3", side=Side.APP)
        payment = create(connector, EntityType.PAYMENT, {"customer": customer, "total": "10.00"}).external_id
        _, cursor = read_all(connector, EntityType.PAYMENT)
        engine = make_engine(example_db.url, schema=example_db.schema)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM payments WHERE id = :id"), {"id": payment})
                conn.execute(
                    sa.text(
                        "INSERT INTO deleted_records (entity, record_id, version, deleted_at)"
                        " VALUES ('payment', :id, 2, :at)"
                    ),
                    {"id": payment, "at": stamp(engine, datetime.now(UTC))},
                )
        finally:
            engine.dispose()
        events, _ = read_all(connector, EntityType.PAYMENT, cursor)
        gone = latest(events)[payment]
        assert gone.operation is Operation.DELETE
        assert gone.version.seq == 2
        assert connector.fetch(EntityType.PAYMENT, payment).operation is Operation.DELETE


def test_a_soft_deleted_customer_reads_as_a_delete(sqlite_example: AppDb) -> None:
    with sqlite_example.connector() as connector:
        engine = make_engine(sqlite_example.url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE customers SET deleted_at = :at, version = version + 1, updated_at = :at"
                        " WHERE id = 3"
                    ),
                    {"at": stamp(engine, datetime.now(UTC))},
                )
        finally:
            engine.dispose()
        events, _ = read_all(connector, CUSTOMER)
        assert latest(events)["3"].operation is Operation.DELETE
        assert latest(events)["3"].version.seq == 2


def test_an_invalid_row_is_skipped_and_the_others_still_read(sqlite_example: AppDb) -> None:
    engine = make_engine(sqlite_example.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE customers SET display_name = '' WHERE id = 2"))
    finally:
        engine.dispose()
    with sqlite_example.connector() as connector:
        events, _ = read_all(connector, CUSTOMER)
    assert sorted(e.external_id for e in events) == ["1", "3"]


def test_polling_by_version_reads_a_table_larger_than_a_page_to_its_end(example_db: AppDb) -> None:
    # The paged read kept no start time when polling by version, so each call began again at page one
    # and a table larger than a page was never read to its end.
    capture = {"poll_by": "version"}
    with connector_with(example_db, "entities.customer.capture", capture, page_size=1) as connector:
        events, _ = read_all(connector, CUSTOMER)
        assert sorted({e.external_id for e in events}) == sorted(versions(connector.engine))
        assert len(versions(connector.engine)) > 1


@pytest.mark.parametrize("spread_seconds", [60.0, 0.0])
def test_a_paged_read_carries_only_the_pairs_its_overlap_needs(
    sqlite_example: AppDb, spread_seconds: float
) -> None:
    """The cursor of a read part-way through its pages kept the (id, version) of every row read so far,
    and was decoded and encoded on every page: a big read slowed quadratically. It now carries what the
    read's final overlap can meet again (at most SEEN_LIMIT pairs), and still reads every row once."""
    from connectors.app.cursor import SEEN_LIMIT

    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    start = clock.now() - timedelta(days=1)
    engine = make_engine(sqlite_example.url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM customers WHERE id NOT IN (SELECT customer_id FROM invoices)"))
            taken = {r[0] for r in conn.execute(sa.text("SELECT id FROM customers"))}
            rows = [
                {
                    "id": 1000 + i,
                    "name": f"Paged {i}",
                    "at": stamp(engine, start + timedelta(seconds=i * spread_seconds)),
                }
                for i in range(300)
            ]
            conn.execute(
                sa.text("INSERT INTO customers (id, display_name, updated_at) VALUES (:id, :name, :at)"), rows
            )
        with connector_with(
            sqlite_example, "entities.customer.capture", {"overlap_seconds": 5}, clock=clock, page_size=10
        ) as c:
            cursor, seen_sizes, read = None, [], []
            while True:
                page = c.read_changes(CUSTOMER, cursor)
                read += [e.external_id for e in page.events]
                cursor = page.cursor
                seen_sizes.append(len(json.loads(cursor).get("seen", [])))
                if page.complete:
                    break
    finally:
        engine.dispose()
    assert sorted(read, key=int) == sorted([str(r["id"]) for r in rows] + [str(i) for i in taken], key=int)
    assert len(read) == len(set(read))
    if spread_seconds:  # a minute apart, a 5 s overlap: a page's pairs at most, never the whole read
        assert max(seen_sizes) <= 2 * 10
    else:  # every row in the overlap: bounded all the same
        assert max(seen_sizes) <= SEEN_LIMIT
    assert len(seen_sizes) > 30
