"""Batch writes: creates of customers and items, up to `batch_max_items` per /batch request.

Only creates of names go in a batch: they reference nothing another item of the same batch could
create (QuickBooks runs a batch's items without letting one see another). Every other op, and any create
whose name turns out to be taken (fault 6240), goes through the single-write path, which applies the
duplicate-name policy. The requestid is a hash of the batch's sorted op ids and the bIds follow that
order, so the same ops sent again are replayed by QuickBooks, never created twice. A batch is metered
(CorePlus) where single writes are not: this is for backfills, and off by default.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from connectors.quickbooks.client import BATCH_REQUEST_ID_MAX, QboClient
from connectors.quickbooks.faults import error_from_fault
from connectors.quickbooks.sync.writes import NAME_FIELDS, QBO_NAMES, WriteHandler
from engine.errors import DuplicateNameError, LedgersyncError, UpstreamUnavailableError
from engine.model import Side
from engine.plan import Op, OpKind
from engine.ports import WriteResult

log = logging.getLogger(__name__)

Outcome = WriteResult | LedgersyncError


def batch_request_id(op_ids: Sequence[str]) -> str:
    """The requestid of a batch of ops: the same for the same ops in any order, within QuickBooks' 36."""
    digest = hashlib.sha256("\n".join(sorted(op_ids)).encode()).hexdigest()
    return f"b-{digest}"[:BATCH_REQUEST_ID_MAX]


def batchable(op: Op) -> bool:
    """A create of a customer or an item: independent of every other create in its batch."""
    return op.side is Side.QUICKBOOKS and op.kind is OpKind.CREATE and op.entity in NAME_FIELDS


class BatchWrites:
    """The batch half of `QboConnector.write_many`; single writes go through `WriteHandler`."""

    def __init__(self, client: QboClient, writes: WriteHandler, max_items: int) -> None:
        self.client = client
        self.writes = writes
        self.max_items = max_items

    def write_many(self, ops: Sequence[Op]) -> list[Outcome]:
        done: dict[str, Outcome] = {}
        bodies: dict[str, dict[str, Any]] = {}
        for op in ops:
            if not batchable(op):
                done[op.op_id] = self._single(op)
                continue
            try:
                bodies[op.op_id] = self.writes.create_body(op)
            except LedgersyncError as exc:
                done[op.op_id] = exc
        grouped = sorted((op for op in ops if op.op_id in bodies), key=lambda op: op.op_id)
        for start in range(0, len(grouped), self.max_items):
            done.update(self._batch(grouped[start : start + self.max_items], bodies))
        return [done[op.op_id] for op in ops]

    def _batch(self, ops: Sequence[Op], bodies: dict[str, dict[str, Any]]) -> dict[str, Outcome]:
        """One /batch request (`ops` sorted by op id); names already taken are retried one by one."""
        bids = {f"b{n}": op for n, op in enumerate(ops)}
        items = [
            {"bId": bid, "operation": "create", QBO_NAMES[op.entity]: bodies[op.op_id]}
            for bid, op in bids.items()
        ]
        rid = batch_request_id([op.op_id for op in ops])
        try:
            answers = self.client.batch(items, rid)
        except LedgersyncError as exc:
            log.warning("batch %s of %d creates failed as a whole: %s", rid, len(ops), exc)
            return {op.op_id: exc for op in ops}
        log.info("batch %s: %d creates sent", rid, len(ops))
        done: dict[str, Outcome] = {}
        for bid, op in bids.items():
            answer = answers.get(bid)
            if answer is None:
                done[op.op_id] = UpstreamUnavailableError(f"batch {rid} did not answer item {bid}")
            elif "Fault" in answer:
                error = error_from_fault(answer["Fault"])
                # The single path knows the duplicate-name policy (suffix, link or manual).
                done[op.op_id] = self._single(op) if isinstance(error, DuplicateNameError) else error
            else:
                done[op.op_id] = self._answered(op, answer)
        return done

    def _answered(self, op: Op, answer: dict[str, Any]) -> Outcome:
        try:
            return self.writes.result(op.entity, answer[QBO_NAMES[op.entity]])
        except LedgersyncError as exc:
            return exc
        except KeyError:
            return UpstreamUnavailableError(f"batch answer for op {op.op_id} holds no {QBO_NAMES[op.entity]}")

    def _single(self, op: Op) -> Outcome:
        try:
            return self.writes.write(op)
        except LedgersyncError as exc:
            return exc
