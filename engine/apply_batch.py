"""Applying several independent ops in one request (a BatchWriter), each recorded as `apply_op` would.

One batch goes in three steps, so that only the request itself need leave the calling thread:
`prepare` reads the ops and resolves their references (one transaction for many batches), `send` is
the connector call, `record` settles what came back (every success of the batch in one transaction).

A batch whose answer is lost must be sent again as the same set of ops, so the other side replays it
instead of writing it twice: every op of a failed batch keeps the batch's key in its stored error, and
`batch_groups` puts those ops together again before forming new batches.

A `PacedWriter` also says what its rate budget would let start now (`room`) and writes one op as a
*spare* call (`write_spare`), one that leaves the minute's remaining batches their requests: the
pipeline sends batches while the minute allows them and fills the rest of it with single writes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, cast

from engine.apply import Applied, Outcome, outgoing_ops, record_success, record_successes, settle_error
from engine.errors import LedgersyncError, RetriableError
from engine.plan import Op, OpStatus
from engine.ports import BatchWriter, StateStore, WriteResult
from engine.refs import UnlinkedReferenceError
from engine.state import OpRecord

log = logging.getLogger(__name__)

_TAG = re.compile(r"\[batch ([0-9a-f]{16})\]$")

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
        """(this batch less its last op, that op alone as a single write); never for a replay."""
        if self.replay or not self.ops:
            raise ValueError("a replayed batch is sent whole")
        rest = replace(self, ops=self.ops[:-1], outgoing=self.outgoing[:-1], as_batch=len(self.ops) > 2)
        return rest, Batch(self.ops[-1:], self.outgoing[-1:], as_batch=False)


def prepare(
    store: StateStore, groups: Sequence[Sequence[str]], now: datetime
) -> tuple[list[Batch], dict[str, Applied]]:
    """The batches of `groups` (claimed op ids), read in one transaction; and the outcomes of the ops
    that are not sent: no longer pending (skipped), or referencing a record not linked yet (retry)."""
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

    Ops that failed in a way that may have been committed unseen (retriable) keep the key of the set
    they form, so that set is sent again as one batch, under the same requestid, and replayed.
    """
    outcomes: dict[str, Applied] = {}
    written: list[tuple[Op, WriteResult]] = []
    failed: list[tuple[Op, LedgersyncError, str]] = []
    for batch, results in answered:
        paired = list(zip(batch.ops, results, strict=True))
        unsure = [op.op_id for op, r in paired if isinstance(r, RetriableError)]
        note = f" [batch {batch_key(unsure)}]" if batch.as_batch and unsure else ""
        for op, answer in paired:
            if isinstance(answer, LedgersyncError):
                failed.append((op, answer, note if isinstance(answer, RetriableError) else ""))
            else:
                written.append((op, answer))
    if written:
        try:
            with store.session() as s:
                record_successes(s, written, now)
        except LedgersyncError as exc:
            # One op's record failed (a racing worker moved its link): the others still land.
            log.warning("recording %d writes in one transaction failed (%s): one by one", len(written), exc)
            for op, result in written:
                with store.session() as s:
                    record_success(s, op, result, now)
        outcomes.update((op.op_id, Applied(Outcome.APPLIED)) for op, _ in written)
    for op, error, tag in failed:
        outcomes[op.op_id] = settle_error(store, connector, op, error, now, tag)
    return outcomes


def replays_a_batch(record: OpRecord) -> bool:
    """Whether this op was in a batch whose answer was lost (so it must be sent as that batch again)."""
    return _TAG.search(record.last_error or "") is not None


def batch_groups(records: Sequence[OpRecord], size: int) -> list[list[str]]:
    """Op ids in batches of at most `size`: the ops of a failed batch together first, as they were."""
    retried: dict[str, list[str]] = {}
    fresh: list[str] = []
    for record in records:
        match = _TAG.search(record.last_error or "")
        if match is None:
            fresh.append(record.op.op_id)
        else:
            retried.setdefault(match.group(1), []).append(record.op.op_id)
    groups: list[list[str]] = []
    for key, members in retried.items():
        if batch_key(members) != key:
            # Part of that batch was settled since (applied, parked): what is left is a new batch.
            log.info("batch %s is no longer whole: its %d pending op(s) go in new batches", key, len(members))
            fresh.extend(members)
        else:
            groups.append(members)
    groups.extend(fresh[i : i + size] for i in range(0, len(fresh), size))
    return groups
