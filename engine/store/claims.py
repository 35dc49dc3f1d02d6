"""Claims on ops: while one worker applies an op, no other worker writes it.

Two workers do reach the same pending op at once (the scheduled kick sweeps every pending op while an
apply message for it waits in the queue, more so on a busy machine). If both write, the second one's
write fails on the version the first one's produced, supersedes the op and journals our own write as
if a user had made it; the first one then finds the op no longer pending. That echo, stamped later
than the user's own edit on the other side, then wins `newest_wins` over it: a lost update.

PostgreSQL: a session-level advisory lock per op (`pg_try_advisory_lock`), taken on a connection of
the claims' own pool, in autocommit (no transaction stays open during the write). A worker killed
mid-write loses its connection, and PostgreSQL releases its claims with it. SQLite (the embedded
runtime, one process): a set of the op ids claimed in this process.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from engine.store.errors import StoreUnavailableError

log = logging.getLogger(__name__)

_local_guard = threading.Lock()
#: (database, op id) claimed by a thread of this process (SQLite).
_local_held: set[tuple[str, str]] = set()


def lock_key(op_id: str) -> int:
    """The advisory lock key of an op: 64 bits of a hash of its id (uuid4 ids: no collision to fear)."""
    return int.from_bytes(hashlib.blake2b(op_id.encode(), digest_size=8).digest(), "big", signed=True)


class OpClaims:
    """Claims on the ops of one state store; `engine` is the claims' own (PostgreSQL) or None (SQLite)."""

    def __init__(self, database: str, engine: sa.Engine | None) -> None:
        self._database = database
        self._engine = engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def hold(self, op_ids: Sequence[str]) -> Iterator[frozenset[str]]:
        """Claim those of `op_ids` no other worker holds, for the block; yields the ids claimed here."""
        wanted = list(dict.fromkeys(op_ids))
        if self._engine is None:
            with self._hold_locally(wanted) as held:
                yield held
        else:
            with self._hold_in_postgres(self._engine, wanted) as held:
                yield held

    @contextmanager
    def _hold_locally(self, op_ids: list[str]) -> Iterator[frozenset[str]]:
        with _local_guard:
            held = frozenset(i for i in op_ids if (self._database, i) not in _local_held)
            _local_held.update((self._database, i) for i in held)
        try:
            yield held
        finally:
            with _local_guard:
                _local_held.difference_update((self._database, i) for i in held)

    @staticmethod
    @contextmanager
    def _hold_in_postgres(engine: sa.Engine, op_ids: list[str]) -> Iterator[frozenset[str]]:
        held: list[str] = []
        try:
            conn = engine.connect()
        except (OperationalError, InterfaceError) as error:
            raise _unavailable(error) from error
        try:
            keys = {lock_key(op_id): op_id for op_id in op_ids}
            try:
                if keys:  # every claim in one statement: a batch of 30 ops is one round trip
                    got = conn.execute(_TRY_LOCK, {"keys": list(keys)})
                    held = [keys[k] for k, locked in got if locked]
            except (OperationalError, InterfaceError) as error:
                conn.invalidate()  # its session ends, and every claim it took with it
                raise _unavailable(error) from error
            try:
                yield frozenset(held)
            finally:
                try:
                    if held:
                        conn.execute(_UNLOCK, {"keys": [lock_key(op_id) for op_id in held]})
                except DBAPIError:
                    # A connection back in the pool must hold no claim: end its session instead.
                    log.warning("could not release %d op claim(s); closing their connection", len(held))
                    conn.invalidate()
        finally:
            conn.close()


_TRY_LOCK = sa.text(
    "SELECT k, pg_try_advisory_lock(k)"
    " FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS t(k, n) ORDER BY n"
)
_UNLOCK = sa.text("SELECT pg_advisory_unlock(k) FROM unnest(CAST(:keys AS bigint[])) AS t(k)")


def _unavailable(error: DBAPIError) -> StoreUnavailableError:
    return StoreUnavailableError("the state store is unavailable", detail=f"claiming ops: {error.orig}")
