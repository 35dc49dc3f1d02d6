"""Op claims: an op claimed by one worker is not claimed by another until released, or until the
claiming worker's process dies (PostgreSQL ends its session)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from engine.store import SqlStateStore
from engine.store.claims import lock_key
from tests.support.stores import postgres_schema, postgres_url

# PostgreSQL's advisory locks belong to the database, not to a schema: every test run (and every xdist
# worker) claims op ids of its own, or two runs sharing the test database would hold each other's.
RUN = secrets.token_hex(4)
OP_A, OP_B, OP_C = f"op-a-{RUN}", f"op-b-{RUN}", f"op-c-{RUN}"


def claim_elsewhere(store: SqlStateStore, op_ids: list[str]) -> frozenset[str]:
    """What another worker thread gets when it claims `op_ids` now."""

    def claim() -> frozenset[str]:
        with store.claim_ops(op_ids) as held:
            return held

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(claim).result(timeout=10)


def test_a_claimed_op_is_not_claimed_again_until_released(store: SqlStateStore) -> None:
    with store.claim_ops([OP_A, OP_B, OP_A]) as held:
        assert held == {OP_A, OP_B}
        assert claim_elsewhere(store, [OP_B, OP_C]) == {OP_C}
    assert claim_elsewhere(store, [OP_A, OP_B, OP_C]) == {OP_A, OP_B, OP_C}


def test_a_claim_is_released_when_the_block_raises(store: SqlStateStore) -> None:
    with pytest.raises(RuntimeError), store.claim_ops([OP_A]):
        raise RuntimeError("the write failed")
    assert claim_elsewhere(store, [OP_A]) == {OP_A}


@pytest.fixture
def two_workers() -> Iterator[tuple[SqlStateStore, SqlStateStore]]:
    """Two stores on one PostgreSQL schema, as two worker processes open it."""
    with postgres_schema() as schema:
        first = SqlStateStore(postgres_url(), create=True, schema=schema)
        second = SqlStateStore(postgres_url(), schema=schema)
        try:
            yield first, second
        finally:
            first.dispose()
            second.dispose()


@pytest.mark.postgres
def test_workers_in_two_processes_never_hold_one_op(two_workers: tuple[SqlStateStore, SqlStateStore]) -> None:
    first, second = two_workers
    with first.claim_ops([OP_A]) as held:
        assert held == {OP_A}
        with second.claim_ops([OP_A, OP_B]) as other:
            assert other == {OP_B}
    with second.claim_ops([OP_A]) as held:
        assert held == {OP_A}


def gone(admin: sa.Engine, pid: int) -> None:
    """Wait until backend `pid` has ended (pg_terminate_backend only signals it)."""
    deadline = time.monotonic() + 10
    while True:
        with admin.connect() as conn:
            query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            if not conn.execute(query, {"pid": pid}).scalar_one():
                return
        assert time.monotonic() < deadline, f"backend {pid} did not end"
        time.sleep(0.02)


@pytest.mark.postgres
def test_the_claims_of_a_worker_that_died_are_released(
    two_workers: tuple[SqlStateStore, SqlStateStore],
) -> None:
    first, second = two_workers
    key = lock_key(OP_A)
    admin = sa.create_engine(postgres_url(), poolclass=sa.NullPool)
    try:
        with first.claim_ops([OP_A]) as held:
            assert held == {OP_A}
            with admin.begin() as conn:
                # The claiming backend goes away, as it does when its worker is killed mid-write.
                holder = conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND classid = :high AND objid = :low AND objsubid = 1"
                    ),
                    {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
                ).scalar_one()
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": holder})
            gone(admin, holder)
            with second.claim_ops([OP_A]) as taken:
                assert taken == {OP_A}
    finally:
        admin.dispose()
    with first.claim_ops([OP_A]) as again:  # the first worker's pool lost nothing usable
        assert again == {OP_A}
