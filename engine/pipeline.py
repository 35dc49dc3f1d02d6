"""Applying the pending ops as a pipeline: dependency waves, batches, several requests in flight.

Pending ops are read a page at a time (`PAGE`, oldest first), so a backfill of any size holds one page.
Ops go in dependency waves (`waves`): customers and items, then the invoices that reference them, then
the payments; an op whose references an earlier wave linked goes out with its own wave, one still
unlinked waits for a later pass. A record with several pending ops for one side gets one per wave, in
order: the items of a batch cannot see each other, so two writes of one record never share one.

A BatchWriter gets each wave in batches (`batch_groups`: the ops of a batch whose answer was lost
together again, as they were), up to IN_FLIGHT requests at once. Only the connector call runs on a
thread: the calling thread claims each batch's ops, reads them all in one transaction, and records
the answers as they come back (those that come back within RECORD_WINDOW_SECONDS of each other in one
transaction) while the others are still in flight. The connector's rate budget decides when each
request may start, so the pipeline never outruns the other side's limits. Every other connector (the
app side) gets one op at a time.

A writer that reports its budget (a PacedWriter: QuickBooks) is fed by what the budget has room for
(`_send_paced`): a batch while the minute still allows batches, and once they are spent, single
writes taken off the least full batch, sent as spare calls (they leave the minute's next batches
their requests), so the minute is filled: 40 batches of 30 plus 460 single writes, not 40 batches.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from functools import cache

from engine.apply import Applied, Outcome, apply_op
from engine.apply_batch import (
    Batch,
    Mark,
    PacedWriter,
    Result,
    batch_groups,
    marker,
    paced,
    prepare,
    record,
    record_many,
    send,
)
from engine.model import DEPENDS_ON, EntityType, Side
from engine.plan import OpStatus
from engine.ports import BatchWriter, Clock, Connector, StateStore, batch_writer
from engine.state import OpRecord

log = logging.getLogger(__name__)

#: Requests sent at once to one batch-writing side: QuickBooks' 10 in flight per company (its rate
#: budget enforces the limit across every worker; this is what one pass asks for).
IN_FLIGHT = 10
#: After an answer comes back, how long the recording thread waits for more to record with it: one
#: transaction (about a dozen statements) for several answers, not one each, for a latency this small.
RECORD_WINDOW_SECONDS = 0.1
#: The most ops recorded in one transaction.
RECORD_AT_MOST = 300
#: Pending ops read and applied at once: what a backfill of any size holds in memory.
PAGE = 2_000
#: Before the first op (positions start at 1): where `apply_pending` starts paging.
FIRST = (0, "")
#: How soon a paced sender looks at the budget again when it had no room.
LOOK_AGAIN_SECONDS = 0.005
#: The longest it sleeps on the budget's word before looking again.
LOOK_AT_MOST_SECONDS = 0.25


@cache
def level(entity: EntityType) -> int:
    """How deep `entity` sits in the references: 0 for customers and items, 1 for invoices, 2 payments."""
    return max((level(dep) + 1 for dep in DEPENDS_ON[entity]), default=0)


def waves(records: Sequence[OpRecord]) -> list[list[OpRecord]]:
    """`records` (oldest first) in the waves they are applied in: by dependency level, and within a
    level one op per record and side per wave, a record's ops in the order they were planned."""
    seen: Counter[tuple[str, Side]] = Counter()
    by_wave: dict[tuple[int, int], list[OpRecord]] = defaultdict(list)
    for r in records:
        key = (r.op.link_id, r.op.side)
        by_wave[(level(r.op.entity), seen[key])].append(r)
        seen[key] += 1
    return [by_wave[w] for w in sorted(by_wave)]


def apply_pending(
    store: StateStore,
    connectors: Mapping[Side, Connector],
    clock: Clock,
    connection: str,
    *,
    in_flight: int = IN_FLIGHT,
    page: int = PAGE,
    patience: float | None = None,
) -> list[Applied]:
    """Apply every pending op of `connection` once, a page of `page` ops at a time (oldest first), each
    page wave by wave; each op's outcome.

    Paged so that a backfill of any size holds only one page of ops: an op whose references a later
    page links waits (unlinked, still pending) for the next call, as one waits for a later wave.
    `patience`: when the company's rate budget has no room for longer than that (a 429's penalty),
    what is not sent yet stays pending for a later call instead of this thread waiting (a worker
    shared by many companies); None waits."""
    outcomes: list[Applied] = []
    after = FIRST
    while True:
        with store.session() as s:
            pending, after = s.ops_page(connection, [OpStatus.PENDING], after, page)
        for wave in waves(pending):
            by_side: dict[Side, list[OpRecord]] = defaultdict(list)
            for r in wave:
                by_side[r.op.side].append(r)
            for side, records in by_side.items():
                connector = connectors[side]
                writer = batch_writer(connector)
                if writer is None:
                    outcomes += [apply_op(store, connector, r.op.op_id, clock.now()) for r in records]
                else:
                    outcomes += apply_wave(
                        store, writer, records, clock, in_flight=in_flight, patience=patience
                    )
        if len(pending) < page:
            return outcomes


def apply_wave(
    store: StateStore,
    writer: BatchWriter,
    records: Sequence[OpRecord],
    clock: Clock,
    *,
    in_flight: int = IN_FLIGHT,
    patience: float | None = None,
) -> list[Applied]:
    """Apply ops that do not depend on each other through `writer`: batches sent concurrently, each
    recorded when it comes back. An op another worker holds is skipped, as `apply_op` does, and so is
    one left unsent because the budget had no room within `patience` (see `apply_pending`)."""
    groups = batch_groups(records, writer.capabilities().batch_size)
    outcomes: dict[str, Applied] = {}
    with ExitStack() as claims:
        claimed: list[list[str]] = []
        for group in groups:
            held = claims.enter_context(store.claim_ops(group))
            claimed.append([op_id for op_id in group if op_id in held])
        batches, settled = prepare(store, [g for g in claimed if g], clock.now())
        outcomes.update(settled)
        pacer = paced(writer)
        if batches and pacer is not None:
            outcomes.update(_send_paced(store, pacer, batches, clock, in_flight, patience))
        elif batches:
            outcomes.update(_send_all(store, writer, batches, clock, in_flight))
    ordered = [r.op.op_id for r in records]
    return [outcomes.get(op_id, Applied(Outcome.SKIPPED)) for op_id in ordered]


def _send_all(
    store: StateStore, writer: BatchWriter, batches: Sequence[Batch], clock: Clock, in_flight: int
) -> dict[str, Applied]:
    outcomes: dict[str, Applied] = {}
    failure: BaseException | None = None
    threads = max(1, min(in_flight, len(batches)))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send") as pool:
        sent: dict[Future[list[Result]], Batch] = {pool.submit(send, writer, b): b for b in batches}
        for future in as_completed(sent):
            batch = sent[future]
            try:
                results = future.result()
            except Exception as exc:  # a bug in the connector: record the others, then raise it
                log.exception("a batch of %d op(s) failed outside the connector's errors", len(batch.ops))
                failure = failure or exc
                continue
            outcomes.update(record(store, writer, batch, results, clock.now()))
    if failure is not None:
        raise failure
    return outcomes


#: What a sender hands back: the request and its results, or the exception a connector bug raised.
_Answer = tuple[Batch, list[Result] | Exception]


def _send_paced(
    store: StateStore,
    writer: PacedWriter,
    batches: Sequence[Batch],
    clock: Clock,
    in_flight: int,
    patience: float | None = None,
) -> dict[str, Applied]:
    """Send `batches` as the writer's budget has room, from `in_flight` sender threads that each take
    their next request from one `_Feed`; this thread records what comes back, what came back close
    together (`gather`) in one transaction, while the senders go on."""
    feed = _Feed(writer, batches, marker(store), patience)
    answers: queue.SimpleQueue[_Answer | None] = queue.SimpleQueue()
    outcomes: dict[str, Applied] = {}
    failure: BaseException | None = None
    threads = max(1, min(in_flight, sum(len(b.ops) for b in batches)))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="send") as pool:
        senders = [pool.submit(_sender, feed, writer, answers) for _ in range(threads)]
        left = threads
        while left:
            answered = gather(answers, left)
            came: list[tuple[Batch, Sequence[Result]]] = []
            for item in answered:
                if item is None:  # a sender is done
                    left -= 1
                    continue
                batch, answer = item
                if isinstance(answer, Exception):  # a bug in the connector: record the others, then raise it
                    failure = failure or answer
                else:
                    came.append((batch, answer))
            if came:
                outcomes.update(record_many(store, writer, came, clock.now()))
        for sender in senders:
            sender.result()  # a sender's own bug (the feed's) surfaces here
    if failure is not None:
        raise failure
    return outcomes


def gather(
    answers: queue.SimpleQueue[_Answer | None],
    senders: int,
    *,
    window: float = RECORD_WINDOW_SECONDS,
    at_most: int = RECORD_AT_MOST,
) -> list[_Answer | None]:
    """The next answer (waiting for it), with those that come back within `window` seconds of it, up to
    `at_most` ops in all or until each of the `senders` still running said it is done (None)."""
    first = answers.get()
    taken = [first]
    ops = 0 if first is None else len(first[0].ops)
    done = int(first is None)
    deadline = time.monotonic() + window
    while ops < at_most and done < senders:
        try:
            item = answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        taken.append(item)
        if item is None:
            done += 1
        else:
            ops += len(item[0].ops)
    return taken


def _sender(feed: _Feed, writer: PacedWriter, answers: queue.SimpleQueue[_Answer | None]) -> None:
    """One sender thread: the feed's next request, sent, its answer handed back, until none is left;
    then None, so the recording thread knows this sender is done."""
    try:
        while (taken := feed.next()) is not None:
            batch, spare = taken
            try:
                answers.put((batch, send(writer, batch, spare=spare)))
            except Exception as exc:  # handed to the recording thread, which raises it
                log.exception("sending %d op(s) failed outside the connector errors", len(batch.ops))
                answers.put((batch, exc))
            finally:
                feed.sent(spare)
    finally:
        answers.put(None)


class _Feed:
    """What the sender threads send next, as the budget has room: a batch while the minute allows one,
    else one op of the least full batch as a spare single write (never an op of a replayed batch;
    the split is stored, `sent_as`, before either part is handed out).

    The budget's room does not know what was handed out and has not started yet, so the requests
    handed out and not answered are taken off it: otherwise, near the minute's last batches, several
    senders took a batch each for the same free slot, and all but one waited a whole window (a wave's
    last 80 records waited 6 s in a run of 3,200). Counting the ones already started twice only
    defers a slot to the next look, one request later.
    """

    def __init__(
        self, writer: PacedWriter, batches: Sequence[Batch], mark: Mark, patience: float | None = None
    ) -> None:
        self._writer = writer
        self._mark = mark
        self._patience = patience
        self._queue = deque(batches)
        self._lock = threading.Lock()
        #: Handed out and not answered yet: [batches, spare single writes].
        self._out = [0, 0]

    def sent(self, spare: bool) -> None:
        """A request handed out by `next` was answered (or failed)."""
        with self._lock:
            self._out[spare] -= 1

    def next(self) -> tuple[Batch, bool] | None:
        """(the request to send, whether it is a spare single write); None when nothing is left."""
        while True:
            with self._lock:
                if not self._queue:
                    return None
                batches, spares, wait_for = self._writer.room()
                queue_ = self._queue
                if self._patience is not None and wait_for > self._patience:
                    # The company is held (a 429's penalty): what is left stays pending, unsent, for a
                    # later pass; a batch stored as sent goes whole then, as after a crash.
                    log.info("rate budget held %.1f s: %d request(s) left for later", wait_for, len(queue_))
                    queue_.clear()
                    return None
                if batches > self._out[0]:
                    first = next((i for i, b in enumerate(queue_) if b.as_batch), None)
                    if first is not None:
                        self._out[0] += 1
                        taken = queue_[first]
                        del queue_[first]
                        return taken, False
                if spares > self._out[1]:
                    # From the back (the least full batch), past the replays, which go whole.
                    last = next((i for i in range(len(queue_) - 1, -1, -1) if not queue_[i].replay), None)
                    if last is not None:
                        self._out[1] += 1
                        taken = queue_[last]
                        if not taken.as_batch:
                            del queue_[last]
                            return taken, True
                        rest, single = taken.without_last()
                        # Both now go otherwise than `prepare` stored: stored again before either leaves.
                        self._mark({**rest.sent_as(), **single.sent_as()})
                        queue_[last] = rest
                        return single, True
            time.sleep(max(LOOK_AGAIN_SECONDS, min(wait_for, LOOK_AT_MOST_SECONDS)))
