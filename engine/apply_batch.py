"""Applying several independent ops in one request (a BatchWriter), each recorded as `apply_op` would.

One batch goes in three steps, so that only the request itself need leave the calling thread:
`prepare` reads the ops and resolves their references (one transaction for many batches), `send` is
the connector call, `record` settles what came back (every success of the batch in one transaction).

A request whose answer is lost must be sent again exactly as it went, so the other side replays it
instead of writing it twice: before a request leaves, each of its ops stores how it goes (`sent_as`: the
batch's key, or SENT_SINGLE), in the same transaction that reads the ops, and `batch_groups` puts the
ops of a batch in doubt together again (and an op sent alone alone) before forming new batches. That
holds when the worker is killed between the other side's commit and our record of it: nothing of the
answer was recorded, and the restarted worker still sends the same request.

A `PacedWriter` also says what its rate budget would let start now (`room`) and writes one op as a
*spare* call (`write_spare`), one that leaves the minute's remaining batches their requests: the
pipeline sends batches while the minute allows them and fills the rest of it with single writes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, cast

from engine.apply import Applied, Outcome, outgoing_ops, record_success, record_successes, settle_error
from engine.errors import LedgersyncError, RetriableError
from engine.plan import Op, OpStatus
from engine.ports import BatchWriter, StateStore, WriteResult
from engine.refs import UnlinkedReferenceError
from engine.state import SENT_SINGLE, OpRecord

log = logging.getLogger(__name__)

Result = WriteResult | LedgersyncError


class PacedWriter(BatchWriter, Protocol):
    """A BatchWriter whose requests are paced by a budget it can report on (QuickBooks')."""

    def room(self) -> tuple[int, int, float]:
        """(batch requests, spare single writes, seconds until one may start when both are 0) that
        the budget would let start now, by its per-minute windows; takes nothing."""
        ...

    def write_spare(self, op: Op) -> WriteResult:
        """`write(op)`, leaving the minute's remaining batches the requests they need."""
        ...


def paced(writer: BatchWriter) -> PacedWriter | None:
    """`writer` as a PacedWriter when it reports its budget, else None (every batch sent as one)."""
    if callable(getattr(writer, "room", None)) and callable(getattr(writer, "write_spare", None)):
        return cast(PacedWriter, writer)
    return None


def batch_key(op_ids: Sequence[str]) -> str:
    """The key of a set of ops (order does not matter): what a retried batch is found again by."""
    return hashlib.sha256("\n".join(sorted(op_ids)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Batch:
    """Ops ready to send together: as stored (to record) and as the target side takes them."""

    ops: tuple[Op, ...]
    outgoing: tuple[Op, ...]
    #: False for a lone op sent as a single write (free, where a batch of one is metered).
    as_batch: bool
    #: Holds ops of a batch whose answer was lost: sent again whole, as a batch, never split.
    replay: bool = False

    def without_last(self) -> tuple[Batch, Batch]:
        """(this batch less its last op, that op alone as a single write); never for a replay.
        The caller stores how both now go (`sent_as`) before either is sent."""
        if self.replay or not self.ops:
            raise ValueError("a replayed batch is sent whole")
        rest = replace(self, ops=self.ops[:-1], outgoing=self.outgoing[:-1], as_batch=len(self.ops) > 2)
        return rest, Batch(self.ops[-1:], self.outgoing[-1:], as_batch=False)

    def sent_as(self) -> dict[str, str]:
        """What each op's `sent_as` is while this request is out."""
        how = batch_key([op.op_id for op in self.ops]) if self.as_batch else SENT_SINGLE
        return dict.fromkeys((op.op_id for op in self.ops), how)


#: Stores how the ops of a request go (`Batch.sent_as`) before the request leaves.
Mark = Callable[[dict[str, str]], None]


def marker(store: StateStore) -> Mark:
    """A Mark writing to `store`, in a transaction of its own (from any thread)."""

    def mark(sent: dict[str, str]) -> None:
        with store.session() as s:
            s.set_sent_as(sent)

    return mark


def prepare(
    store: StateStore, groups: Sequence[Sequence[str]], now: datetime
) -> tuple[list[Batch], dict[str, Applied]]:
    """The batches of `groups` (claimed op ids), read in one transaction that also stores how each op
    goes out (`sent_as`); and the outcomes of the ops that are not sent: no longer pending (skipped),
    or referencing a record not linked yet (retry)."""
    batches: list[Batch] = []
    settled: dict[str, Applied] = {}
    with store.session() as s:
        # Every op and every link the ops name, in a few statements for all the groups.
        stored = s.ops_by_id([op_id for group in groups for op_id in group])
        pending = [r for r in stored.values() if r.status is OpStatus.PENDING]
        ready = outgoing_ops(s, [r.op for r in pending])
        for group in groups:
            ops: list[Op] = []
            outgoing: list[Op] = []
            replay = False
            for op_id in group:
                record = stored.get(op_id)
                if record is None or record.status is not OpStatus.PENDING:
                    settled[op_id] = Applied(Outcome.SKIPPED)
                    continue
                out = ready[op_id]
                if isinstance(out, UnlinkedReferenceError):
                    s.set_op_status(op_id, OpStatus.PENDING, now, error=str(out))
                    settled[op_id] = Applied(Outcome.RETRY)
                    continue
                replay = replay or replays_a_batch(record)
                ops.append(record.op)
                outgoing.append(out)
            if ops:
                batches.append(Batch(tuple(ops), tuple(outgoing), len(ops) > 1 or replay, replay))
        s.set_sent_as({op_id: how for batch in batches for op_id, how in batch.sent_as().items()})
    return batches, settled


def send(connector: BatchWriter, batch: Batch, *, spare: bool = False) -> list[Result]:
    """The connector call of one batch: one result or error per op, in order. Touches no store.
    `spare`: a lone op goes as a spare call (the connector must be a PacedWriter)."""
    if not batch.as_batch:
        pacer = paced(connector) if spare else None
        try:
            op = batch.outgoing[0]
            return [pacer.write_spare(op) if pacer is not None else connector.write(op)]
        except LedgersyncError as exc:
            return [exc]
    results = connector.write_many(batch.outgoing)
    if len(results) != len(batch.ops):
        raise RuntimeError(f"write_many answered {len(results)} results for {len(batch.ops)} ops")
    return results


def record(
    store: StateStore, connector: BatchWriter, batch: Batch, results: Sequence[Result], now: datetime
) -> dict[str, Applied]:
    """Settle one batch's results (see `record_many`)."""
    return record_many(store, connector, [(batch, results)], now)


def record_many(
    store: StateStore,
    connector: BatchWriter,
    answered: Sequence[tuple[Batch, Sequence[Result]]],
    now: datetime,
) -> dict[str, Applied]:
    """Settle the results of batches that came back: every success in one transaction (a few
    statements in all), each failure as `apply_op` would.

    Ops that failed in a way that may have been committed unseen (retriable) keep, as `sent_as`, the
    key of the set they form, so that set is sent again as one batch, under the same requestid, and
    replayed (an op sent alone keeps SENT_SINGLE); the other failures are no longer in doubt.
    """
    outcomes: dict[str, Applied] = {}
    written: list[tuple[Op, WriteResult]] = []
    failed: list[tuple[Op, LedgersyncError]] = []
    doubt: dict[str, str | None] = {}
    for batch, results in answered:
        paired = list(zip(batch.ops, results, strict=True))
        unsure = [op.op_id for op, r in paired if isinstance(r, RetriableError)]
        how = batch_key(unsure) if batch.as_batch else SENT_SINGLE
        for op, answer in paired:
            if isinstance(answer, LedgersyncError):
                failed.append((op, answer))
                doubt[op.op_id] = how if isinstance(answer, RetriableError) else None
            else:
                written.append((op, answer))
    # The successes and what is still in doubt in one transaction: a worker killed before it commits
    # leaves the whole batch in doubt, as it went, and it is replayed whole.
    try:
        with store.session() as s:
            record_successes(s, written, now)
            s.set_sent_as(doubt)
    except LedgersyncError as exc:
        # One op's record failed (a racing worker moved its link): the others still land.
        log.warning("recording %d writes in one transaction failed (%s): one by one", len(written), exc)
        for op, result in written:
            with store.session() as s:
                record_success(s, op, result, now)
        with store.session() as s:
            s.set_sent_as(doubt)
    outcomes.update((op.op_id, Applied(Outcome.APPLIED)) for op, _ in written)
    for op, error in failed:
        outcomes[op.op_id] = settle_error(store, connector, op, error, now)
    return outcomes


def replays_a_batch(record: OpRecord) -> bool:
    """Whether this op went out in a batch whose answer is not known (so it goes as that batch again)."""
    return record.sent_as is not None and record.sent_as != SENT_SINGLE


def batch_groups(records: Sequence[OpRecord], size: int) -> list[list[str]]:
    """Op ids in batches of at most `size`: first the ops of each batch in doubt together, as they
    went, and each op in doubt that went alone on its own; then the rest, `size` at a time."""
    retried: dict[str, list[str]] = {}
    fresh: list[str] = []
    groups: list[list[str]] = []
    for record in records:
        if record.sent_as == SENT_SINGLE:
            groups.append([record.op.op_id])
        elif record.sent_as is None:
            fresh.append(record.op.op_id)
        else:
            retried.setdefault(record.sent_as, []).append(record.op.op_id)
    for key, members in retried.items():
        if batch_key(members) != key:
            # Part of that batch was settled since (applied, parked): what is left is a new batch.
            log.info("batch %s is no longer whole: its %d pending op(s) go in new batches", key, len(members))
            fresh.extend(members)
        else:
            groups.append(members)
    groups.extend(fresh[i : i + size] for i in range(0, len(fresh), size))
    return groups
