"""Applying several independent ops in one request (a BatchWriter), each recorded as `apply_op` would.

A batch whose answer is lost must be sent again as the same set of ops, so the other side replays it
instead of writing it twice: every op of a failed batch keeps the batch's key in its stored error, and
`batch_groups` puts those ops together again before forming new batches.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from datetime import datetime

from engine.apply import Applied, Outcome, outgoing_op, record_success, settle_error
from engine.errors import LedgersyncError, RetriableError
from engine.plan import Op, OpStatus
from engine.ports import BatchWriter, StateStore
from engine.refs import UnlinkedReferenceError
from engine.state import OpRecord

log = logging.getLogger(__name__)

_TAG = re.compile(r"\[batch ([0-9a-f]{16})\]$")


def batch_key(op_ids: Sequence[str]) -> str:
    """The key of a set of ops (order does not matter): what a retried batch is found again by."""
    return hashlib.sha256("\n".join(sorted(op_ids)).encode()).hexdigest()[:16]


def apply_batch(
    store: StateStore, connector: BatchWriter, op_ids: Sequence[str], now: datetime
) -> dict[str, Applied]:
    """Run pending ops through one `write_many`; each op's outcome, by op id (skipped ones included).

    An op another worker is applying (it holds the op's claim) is skipped, as `apply_op` does.
    """
    with store.claim_ops(op_ids) as claimed:
        outcomes = _apply_claimed(store, connector, [i for i in op_ids if i in claimed], now)
    return {op_id: outcomes.get(op_id, Applied(Outcome.SKIPPED)) for op_id in op_ids}


def _apply_claimed(
    store: StateStore, connector: BatchWriter, op_ids: Sequence[str], now: datetime
) -> dict[str, Applied]:
    outcomes: dict[str, Applied] = {}
    ops: list[Op] = []
    outgoing: list[Op] = []
    with store.session() as s:
        for op_id in op_ids:
            record = s.get_op(op_id)
            if record is None or record.status is not OpStatus.PENDING:
                outcomes[op_id] = Applied(Outcome.SKIPPED)
                continue
            try:
                ready = outgoing_op(s, record.op)
            except UnlinkedReferenceError as exc:
                s.set_op_status(op_id, OpStatus.PENDING, now, error=str(exc))
                outcomes[op_id] = Applied(Outcome.RETRY)
                continue
            ops.append(record.op)
            outgoing.append(ready)
    if not ops:
        return outcomes
    results = connector.write_many(outgoing)
    if len(results) != len(ops):
        raise RuntimeError(f"write_many answered {len(results)} results for {len(ops)} ops")
    note = f" [batch {batch_key([op.op_id for op in ops])}]"
    for op, result in zip(ops, results, strict=True):
        if isinstance(result, LedgersyncError):
            # Only a retriable failure may have been committed unseen: it keeps the batch's key.
            tag = note if isinstance(result, RetriableError) else ""
            outcomes[op.op_id] = settle_error(store, connector, op, result, now, tag)
        else:
            with store.session() as s:
                record_success(s, op, result, now)
            outcomes[op.op_id] = Applied(Outcome.APPLIED)
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
