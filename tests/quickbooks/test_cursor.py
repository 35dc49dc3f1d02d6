"""Cursor math: CDC windows never pass what they covered, capped responses lose nothing, old cursors sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.quickbooks import cursor as qc
from connectors.quickbooks.cursor import Mode, QboCursor

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class TestEncoding:
    @pytest.mark.parametrize(
        "cursor",
        [
            QboCursor(Mode.CDC, since=at(5)),
            QboCursor(Mode.SWEEP),
            QboCursor(Mode.SWEEP, since=at(1), position=1001, resume=at(-30)),
            QboCursor(Mode.CDC, since=at(5), seen=frozenset({("12", "3"), ("7", "deleted")})),
        ],
    )
    def test_a_cursor_survives_encoding(self, cursor: QboCursor) -> None:
        assert qc.decode(qc.encode(cursor)) == cursor

    def test_no_cursor_means_a_full_sweep_first(self) -> None:
        assert qc.decode(None) == QboCursor(Mode.SWEEP)

    @pytest.mark.parametrize("text", ["17", "{}", '{"v": 1, "mode": "cdc"}', '{"v": 2, "mode": "cdc"}', "x"])
    def test_a_foreign_cursor_is_refused(self, text: str) -> None:
        with pytest.raises(qc.CursorError):
            qc.decode(text)


class TestCdcWindows:
    def test_a_complete_read_covers_up_to_its_start_less_the_overlap(self) -> None:
        step = qc.after_cdc(QboCursor(Mode.CDC, since=at(0)), at(600), [at(10), at(20)], cap=5)
        assert step.complete
        assert step.cursor == QboCursor(Mode.CDC, since=at(600) - qc.DEFAULT_OVERLAP)

    def test_the_cursor_never_moves_backwards(self) -> None:
        step = qc.after_cdc(QboCursor(Mode.CDC, since=at(100)), at(110), [], cap=5)
        assert step.cursor.since == at(100)

    def test_the_cursor_never_passes_the_start_of_the_read(self) -> None:
        # The response time is late; the read began `elapsed` earlier.
        started = qc.read_started(at(700), elapsed=2.5)
        step = qc.after_cdc(QboCursor(Mode.CDC, since=at(0)), started, [], cap=5, overlap=timedelta(0))
        assert step.cursor.since == at(697.5)

    def test_a_capped_read_resumes_at_its_newest_stamp_and_is_incomplete(self) -> None:
        stamps = [at(1), at(2), at(2), at(3), at(3)]
        step = qc.after_cdc(QboCursor(Mode.CDC, since=at(0)), at(600), stamps, cap=5)
        assert not step.complete
        assert step.cursor == QboCursor(Mode.CDC, since=at(3))

    def test_a_cap_full_of_one_instant_switches_to_a_sweep_of_that_instant(self) -> None:
        step = qc.after_cdc(QboCursor(Mode.CDC, since=at(3)), at(600), [at(3)] * 5, cap=5)
        assert not step.complete
        assert step.cursor == QboCursor(Mode.SWEEP, since=at(3), resume=at(4))

    def test_the_cdc_cursor_a_finished_sweep_hands_over_is_not_too_old_minutes_later(self) -> None:
        # Regression: the hand-over cursor sat exactly on the edge, so the next read (a moment later by
        # our clock) swept again, forever.
        step = qc.after_sweep_page(QboCursor(Mode.SWEEP), at(600), [], page_size=10)
        assert step.cursor.mode is Mode.CDC
        assert not qc.too_old(step.cursor, at(600) + timedelta(minutes=50))

    def test_a_cursor_older_than_30_days_must_sweep(self) -> None:
        old = QboCursor(Mode.CDC, since=at(0))
        assert not qc.too_old(old, at(0) + timedelta(days=29))
        assert qc.too_old(old, at(0) + timedelta(days=30))
        assert qc.to_sweep(old) == QboCursor(Mode.SWEEP, since=at(0))


class TestSweep:
    def test_the_query_includes_inactive_name_list_records(self) -> None:
        query = qc.sweep_query("Customer", QboCursor(Mode.SWEEP, since=at(0)), name_list=True)
        assert query == (
            "SELECT * FROM Customer WHERE Active IN (true,false) AND "
            "MetaData.LastUpdatedTime >= '2026-03-01T12:00:00+00:00' "
            "ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000"
        )

    def test_a_transaction_sweep_from_the_start_has_no_where(self) -> None:
        query = qc.sweep_query("Invoice", QboCursor(Mode.SWEEP, position=3), name_list=False, page_size=10)
        assert query == "SELECT * FROM Invoice ORDERBY MetaData.LastUpdatedTime STARTPOSITION 3 MAXRESULTS 10"

    def test_a_full_page_pages_on_from_its_newest_stamp(self) -> None:
        step = qc.after_sweep_page(QboCursor(Mode.SWEEP), at(600), [at(1), at(2)], page_size=2)
        assert not step.complete
        assert step.cursor == QboCursor(Mode.SWEEP, since=at(2), resume=qc.oldest_cdc_since(at(600)))

    def test_a_full_page_at_one_instant_pages_by_position(self) -> None:
        cursor = QboCursor(Mode.SWEEP, since=at(2), resume=at(0))
        step = qc.after_sweep_page(cursor, at(600), [at(2), at(2)], page_size=2)
        assert step.cursor == QboCursor(Mode.SWEEP, since=at(2), position=3, resume=at(0))

    def test_the_last_page_hands_over_to_cdc_no_later_than_the_sweep_began(self) -> None:
        cursor = QboCursor(Mode.SWEEP, since=at(2), resume=at(0))
        step = qc.after_sweep_page(cursor, at(600), [at(2)], page_size=2)
        assert step.cursor == QboCursor(Mode.CDC, since=at(0))
        assert not step.complete  # the CDC read for deletions follows at once


def test_dedupe_drops_repeats_of_the_same_id_and_sync_token() -> None:
    rows = [
        {"Id": "1", "SyncToken": "0"},
        {"Id": "1", "SyncToken": "0"},
        {"Id": "1", "SyncToken": "1"},
        {"Id": "2", "status": "Deleted"},
        {"Id": "2", "status": "Deleted"},
    ]
    assert qc.dedupe(rows) == [rows[0], rows[2], rows[3]]


# A model of QuickBooks: objects with their last-updated second; CDC keeps the oldest `cap` at or
# after changedSince; a query page orders by stamp (ties by id) and skips STARTPOSITION - 1 rows.


def cdc(world: dict[str, int], since: datetime, cap: int) -> list[tuple[str, datetime]]:
    rows = sorted((at(s), i) for i, s in world.items() if at(s) >= since)
    return [(i, t) for t, i in rows[:cap]]


def query(world: dict[str, int], cursor: QboCursor, page: int) -> list[tuple[str, datetime]]:
    rows = sorted((at(s), i) for i, s in world.items() if cursor.since is None or at(s) >= cursor.since)
    return [(i, t) for t, i in rows[cursor.position - 1 : cursor.position - 1 + page]]


def read_until_complete(
    world: dict[str, int], cursor: QboCursor, now: datetime, cap: int, page: int
) -> tuple[set[str], QboCursor]:
    seen: set[str] = set()
    for _ in range(1000):
        if cursor.mode is Mode.CDC:
            rows = cdc(world, cursor.since or T0, cap)
            step = qc.after_cdc(cursor, now, [t for _, t in rows], cap=cap)
        else:
            rows = query(world, cursor, page)
            step = qc.after_sweep_page(cursor, now, [t for _, t in rows], page_size=page)
        seen.update(i for i, _ in rows)
        cursor = step.cursor
        if step.complete:
            return seen, cursor
    raise AssertionError("the reads never completed")


@given(
    stamps=st.lists(st.integers(min_value=0, max_value=40), min_size=0, max_size=60),
    cap=st.integers(min_value=1, max_value=8),
    page=st.integers(min_value=1, max_value=8),
    start=st.sampled_from(["none", "cdc"]),
)
def test_reading_until_complete_sees_every_change_whatever_the_cap(
    stamps: list[int], cap: int, page: int, start: str
) -> None:
    world = {f"r{n}": s for n, s in enumerate(stamps)}
    now = at(100)
    cursor = QboCursor(Mode.SWEEP) if start == "none" else QboCursor(Mode.CDC, since=T0)
    seen, final = read_until_complete(world, cursor, now, cap, page)
    assert seen == set(world)
    assert final.mode is Mode.CDC
    assert final.since is not None and final.since <= now


# Reads in the overlap: a CDC cursor remembers the versions its overlap will bring again, so a record is
# mapped and handed over once per version, yet no version current at a read is ever missed.


def as_objects(world: dict[str, tuple[int, int]], since: datetime, cap: int) -> list[dict[str, object]]:
    rows = sorted((at(stamp), key, token) for key, (token, stamp) in world.items() if at(stamp) >= since)
    return [
        {"Id": key, "SyncToken": str(token), "MetaData": {"LastUpdatedTime": moment.isoformat()}}
        for moment, key, token in rows[:cap]
    ]


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["edit", "read"]), st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3)
        ),
        max_size=40,
    ),
    cap=st.sampled_from([2, 3, 1000]),
    overlap=st.integers(0, 6),
)
def test_a_cdc_cursor_hands_each_version_over_once_and_misses_none(
    steps: list[tuple[str, str, int]], cap: int, overlap: int
) -> None:
    world: dict[str, tuple[int, int]] = {}
    cursor = QboCursor(Mode.CDC, since=T0)
    handed: list[tuple[str, str]] = []
    now = 0
    for action, key, gap in [*steps, ("read", "a", 0)]:
        now += gap
        if action == "edit":
            token = world[key][0] + 1 if key in world else 0
            world[key] = (token, now)
            continue
        for _ in range(1000):
            if cursor.mode is Mode.SWEEP:  # more than a cap's worth at one instant: paged by query
                rows = as_objects(world, cursor.since or T0, 10**6)[cursor.position - 1 :][:cap]
                stamps = [s for row in rows if (s := qc.stamp_of(row))]
                step = qc.after_sweep_page(cursor, at(now), stamps, page_size=cap)
                handed += [qc.version_of(row) for row in rows]
                cursor = step.cursor
                continue
            rows = as_objects(world, cursor.since or T0, cap)
            stamps = [s for row in rows if (s := qc.stamp_of(row))]
            step = qc.after_cdc(cursor, at(now), stamps, cap=cap, overlap=timedelta(seconds=overlap))
            handed += [qc.version_of(row) for row in qc.unseen(cursor, rows)]
            step = qc.remember(step, rows)
            cursor = qc.decode(qc.encode(step.cursor))  # as stored between reads
            if step.complete:
                break
        current = {(key, str(token)) for key, (token, _) in world.items()}
        assert current <= set(handed), "a version current at a read was never handed over"
    if cap == 1000:  # no answer was cut: nothing was handed over twice
        assert len(handed) == len(set(handed))
