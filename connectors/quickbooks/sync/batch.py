"""Batch writes: any op for QuickBooks (create, update, inactivate, void, delete of a customer, item,
invoice or payment), up to `batch_max_items` per /batch request.

The engine hands over ops that do not depend on each other (QuickBooks runs a batch's items without
letting one see another): its dependency waves put customers and items before the invoices that
reference them. Each op becomes the item `WriteHandler.batch_item` builds, and each answer is read by
`WriteHandler.batch_answer`, so a batch writes exactly what single writes would: a name already taken
(fault 6240) goes the single way and its duplicate-name policy. The requestid is a hash of the
batch's sorted op ids and the bIds follow that order, so the same ops sent again are replayed by
QuickBooks, never written twice. A batch is metered (CorePlus) where single writes are not; it is
still the default (`batch_writes`), being several times faster for backfills and bursts of edits.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from connectors.quickbooks.client import BATCH_REQUEST_ID_MAX, QboClient
from connectors.quickbooks.sync.writes import WriteHandler
from engine.errors import LedgersyncError, UpstreamUnavailableError
from engine.plan import Op
from engine.ports import WriteResult

log = logging.getLogger(__name__)

Outcome = WriteResult | LedgersyncError


def batch_request_id(op_ids: Sequence[str]) -> str:
    """The requestid of a batch of ops: the same for the same ops in any order, within QuickBooks' 36."""
    digest = hashlib.sha256("\n".join(sorted(op_ids)).encode()).hexdigest()
    return f"b-{digest}"[:BATCH_REQUEST_ID_MAX]


class BatchWrites:
    """The batch half of `QboConnector.write_many`; single writes go through `WriteHandler`."""

    def __init__(self, client: QboClient, writes: WriteHandler, max_items: int) -> None:
        self.client = client
        self.writes = writes
        self.max_items = max_items

    def write_many(self, ops: Sequence[Op]) -> list[Outcome]:
        done: dict[str, Outcome] = {}
        items: dict[str, dict[str, Any]] = {}
        for op in ops:
            try:
                items[op.op_id] = self.writes.batch_item(op)
            except LedgersyncError as exc:
                done[op.op_id] = exc
        grouped = sorted((op for op in ops if op.op_id in items), key=lambda op: op.op_id)
        for start in range(0, len(grouped), self.max_items):
            done.update(self._batch(grouped[start : start + self.max_items], items))
        return [done[op.op_id] for op in ops]

    def _batch(self, ops: Sequence[Op], items: dict[str, dict[str, Any]]) -> dict[str, Outcome]:
        """One /batch request (`ops` sorted by op id), each answer read as its single write's would be."""
        bids = {f"b{n}": op for n, op in enumerate(ops)}
        request = [{"bId": bid, **items[op.op_id]} for bid, op in bids.items()]
        rid = batch_request_id([op.op_id for op in ops])
        try:
            answers = self.client.batch(request, rid)
        except LedgersyncError as exc:
            log.warning("batch %s of %d writes failed as a whole: %s", rid, len(ops), exc)
            return {op.op_id: exc for op in ops}
        log.info("batch %s: %d writes sent", rid, len(ops))
        done: dict[str, Outcome] = {}
        for bid, op in bids.items():
            answer = answers.get(bid)
            if answer is None:
                done[op.op_id] = UpstreamUnavailableError(f"batch {rid} did not answer item {bid}")
                continue
            try:
                done[op.op_id] = self.writes.batch_answer(op, answer)
            except LedgersyncError as exc:
                done[op.op_id] = exc
        return done
