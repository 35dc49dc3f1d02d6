"""The Dramatiq actors: thin, idempotent, ids and primitives only; each calls one engine function.

A lost message loses nothing: `kick` re-scans the journal and the ops table (the scheduler sends it
regularly), and every actor can run twice with the same arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dramatiq

from engine.apply import Outcome, apply_op
from engine.backoff import OP_BASE_SECONDS, OP_CAP_SECONDS, backoff_delay
from engine.broker import QUEUE, SCHEDULED, queued
from engine.coalesce import ReadRequests
from engine.decide import decide_record
from engine.model import EntityType, Side
from engine.observe.families import Family, gauge
from engine.plan import OpStatus
from engine.ports import Clock, Connector, Inbox, Policy, StateStore
from engine.runner import Runner
from engine.state import RecordKey

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What the actors of one process use, built once at start-up by the composition module."""

    store: StateStore
    #: The default policy; `policies` gives each connection's when tenants have their own.
    policy: Policy
    clock: Clock
    #: connection id -> its two connectors
    connectors: Callable[[str], Mapping[Side, Connector]]
    refresh_tokens: Callable[[datetime], object] | None = None
    sweep: Callable[[str], object] | None = None
    #: The stored webhooks (QuickBooks'): the `ingest` actor journals what they name, then decides it.
    inbox: Inbox | None = None
    #: Checks the alert conditions and sends what is new (engine.observe.alerts); None: alerts are off.
    check_alerts: Callable[[], object] | None = None
    #: Coalesces QuickBooks reads (engine.coalesce, engine.jobs.read_quickbooks); None: every `ingest`
    #: message reads at once.
    reads: ReadRequests | None = None
    #: connection id -> its policy (None: every connection uses `policy`)
    policies: Callable[[str], Policy] | None = None
    _runners: dict[str, Runner] = field(default_factory=dict)

    def policy_for(self, connection: str) -> Policy:
        return self.policy if self.policies is None else self.policies(connection)

    def runner(self, connection: str) -> Runner:
        if connection not in self._runners:
            self._runners[connection] = Runner(
                self.store, self.connectors(connection), self.policy_for(connection), self.clock, connection
            )
        return self._runners[connection]


@dataclass(frozen=True)
class Actors:
    """The declared actors (`send` on one enqueues a message)."""

    poll: dramatiq.Actor[..., Any]
    #: `poll` as the scheduler's rounds send it, on their queue (engine.broker.SCHEDULED).
    scheduled_poll: dramatiq.Actor[..., Any]
    #: Every entity of one side in one read (the scheduled CDC poll), on the scheduled rounds' queue.
    poll_side: dramatiq.Actor[..., Any]
    kick: dramatiq.Actor[..., Any]
    reconcile: dramatiq.Actor[..., Any]
    apply: dramatiq.Actor[..., Any]
    refresh_tokens: dramatiq.Actor[..., Any]
    sweep: dramatiq.Actor[..., Any]
    ingest: dramatiq.Actor[..., Any]
    dispatch: dramatiq.Actor[..., Any]
    alerts: dramatiq.Actor[..., Any]


#: How long a kick waits for its company's rate budget before leaving the rest for the next kick.
KICK_PATIENCE_SECONDS = 2.0

#: How far back `dispatch` looks for resolved conflicts; older ones are the kick's (it sweeps every op).
RESOLVED_WINDOW = timedelta(minutes=10)


def build_actors(broker: dramatiq.Broker, services: Services) -> Actors:  # noqa: PLR0915 - an actor each
    """Declare the actors on `broker`, bound to this process's services."""

    def actor(
        fn: Callable[..., Any], retries: int = 5, queue: str = QUEUE, name: str | None = None
    ) -> dramatiq.Actor[..., Any]:
        declare = dramatiq.actor(
            broker=broker, queue_name=queue, actor_name=name or fn.__name__, max_retries=retries
        )
        bound: dramatiq.Actor[..., Any] = declare(fn)
        return bound

    def decide_each(keys: Sequence[RecordKey]) -> None:
        for key in dict.fromkeys(keys):  # once each, in order
            reconcile_actor.send(key.connection, key.side.value, key.entity.value, key.external_id)

    # Messages are exact: a poll or a webhook sends one reconcile per record that changed, a reconcile
    # one apply per op it planned, an apply one reconcile for the record it wrote. Only the scheduled
    # `kick` re-scans everything, so the number of messages grows with the work, never with its square.

    # Actors return None: without Dramatiq's Results middleware a returned value is discarded with a
    # warning on every message, which buried the workers' real warnings.
    def poll(connection: str, side: str, entity: str) -> None:
        """Read one side's changes of one entity from its cursor, then decide each changed record."""
        decide_each(services.runner(connection).poll_new(Side(side), EntityType(entity)))

    def poll_side(connection: str, side: str) -> None:
        """Read every entity's changes on one side (QuickBooks: one CDC call for all four), then decide
        each changed record, in entity order."""
        decide_each(services.runner(connection).poll_side_new(Side(side)))

    def kick(connection: str) -> None:
        """The scheduled sweep that makes a lost message cost nothing: ops that waited for a reconnect
        resume, then every record still undecided (one that waited for a dependency to be linked, say)
        is decided and every pending op applied, here in this one message."""
        runner = services.runner(connection)
        runner.resume_waiting()
        decided = runner.decide_pending()
        # A company whose budget is held (a 429 storm) keeps its writes for the next kick rather than
        # this worker thread, which other companies' messages need.
        applied = runner.apply_pending(patience=KICK_PATIENCE_SECONDS)
        log.debug("kick %s: %d record(s) decided, %d op(s) applied", connection, decided, applied)

    def reconcile(connection: str, side: str, entity: str, external_id: str) -> None:
        key = RecordKey(
            connection=connection, side=Side(side), entity=EntityType(entity), external_id=external_id
        )
        # Another worker may link or decide this record at the same moment: decided again on what
        # its transaction committed.
        decision = decide_record(services.store, key, services.policy_for(connection), services.clock)
        for op_id in decision.op_ids if decision else ():
            apply_actor.send(op_id)

    def apply(op_id: str) -> None:
        with services.store.session() as s:
            record = s.get_op(op_id)
        if record is None or record.status is not OpStatus.PENDING:
            return
        connector = services.connectors(record.op.connection)[record.op.side]
        applied = apply_op(services.store, connector, op_id, services.clock.now())
        outcome, retry_after = applied.outcome, applied.retry_after
        for next_op in applied.follow_up:  # the rest of an op whose one field was refused
            apply_actor.send(next_op)
        if outcome == Outcome.RETRY:
            # A rate limit says how long to wait; anything else backs off exponentially.
            wait = retry_after or backoff_delay(record.attempts, OP_BASE_SECONDS, OP_CAP_SECONDS)
            delay = int(wait * 1000)
            apply_actor.send_with_options(args=(op_id,), delay=delay)
        elif outcome in (Outcome.APPLIED, Outcome.SUPERSEDED):
            # Our echo (fields QuickBooks computed), or the record re-read after a stale version.
            with services.store.session() as s:
                link = s.get_link(record.op.link_id)
            external_id = link.external_id(record.op.side) if link else None
            if external_id is not None:
                op = record.op
                reconcile_actor.send(op.connection, op.side.value, op.entity.value, external_id)
        log.debug("op %s: %s", op_id, outcome)

    def refresh_tokens() -> None:
        if services.refresh_tokens is not None:
            services.refresh_tokens(services.clock.now())

    def sweep(connection: str) -> None:
        if services.sweep is not None:
            services.sweep(connection)
            kick_actor.send(connection)

    def ingest(connection: str) -> None:
        """The webhook bodies of `connection`'s company become journaled changes (one CDC call).

        Each company's deliveries are its own (the inbox keeps them by realm): one company's read
        never takes, nor waits behind, another's. `connection` also names the read gate this message
        was sent for (engine.coalesce), released before the inbox is read so no later body waits."""
        if services.inbox is None:
            return
        reads = services.reads
        if reads is not None:
            reads.begin(connection)
            if not _pending(connection):
                return  # nothing to read: the window does not start
            reads.done(connection)
        decide_each(services.inbox.ingest(connection=connection).changed)

    def _pending(connection: str) -> bool:
        """Whether the company of `connection` has a delivery waiting (any company's, when the
        connection has none stored)."""
        with services.store.session() as s:
            stored = s.get_connection(connection)
            return bool(s.inbox_pending(1, stored.realm_id if stored is not None else None))

    def dispatch(connection: str) -> None:
        """Apply the ops of conflicts resolved in another process (the CLI, another web replica),
        within seconds rather than at the next kick. Sending one twice is harmless: apply is idempotent.
        `connection` "": every connection's, in one query (the scheduler sends it so, once for all)."""
        with services.store.session() as s:
            op_ids = s.resolved_ops(connection or None, services.clock.now() - RESOLVED_WINDOW)
        for op_id in op_ids:
            apply_actor.send(op_id)

    def alerts() -> None:
        """Check the alert conditions; each incident is sent once, whichever process checks."""
        if services.check_alerts is not None:
            services.check_alerts()

    poll_actor = actor(poll)
    # The scheduler's rounds: a queue of their own (engine.broker.SCHEDULED).
    kick_actor = actor(kick, queue=SCHEDULED)
    reconcile_actor = actor(reconcile)
    apply_actor = actor(apply)
    return Actors(
        poll=poll_actor,
        scheduled_poll=actor(poll, queue=SCHEDULED, name="scheduled_poll"),
        poll_side=actor(poll_side, queue=SCHEDULED),
        kick=kick_actor,
        reconcile=reconcile_actor,
        apply=apply_actor,
        refresh_tokens=actor(refresh_tokens),
        sweep=actor(sweep, queue=SCHEDULED),
        ingest=actor(ingest),
        dispatch=actor(dispatch),
        # A failed notification is retried by the next check, not by Dramatiq.
        alerts=actor(alerts, retries=0),
    )


#: The actors whose first argument is a connection id (the others take an op id, or nothing).
_BY_CONNECTION = frozenset(
    {"poll", "scheduled_poll", "poll_side", "kick", "reconcile", "sweep", "ingest", "dispatch"}
)


def queue_families(broker: dramatiq.Broker, now: datetime) -> list[Family]:
    """Messages waiting per queue and actor (and connection, where the message names one), and the
    age of the oldest: a queue that grows, or whose oldest message ages, has too few workers."""
    labels = ("connection", "queue", "actor")
    depth = gauge("queue_messages", "Messages waiting or being worked on, by actor", labels)
    age = gauge("queue_oldest_message_age_seconds", "Age of the oldest message, by actor", labels)
    messages, lengths = queued(broker)
    counted: dict[tuple[str, str, str], list[int]] = {}
    for m in messages:
        connection = str(m.args[0]) if m.actor in _BY_CONNECTION and m.args else ""
        counted.setdefault((connection, m.queue, m.actor), []).append(m.enqueued_ms)
    now_ms = now.timestamp() * 1000
    for key, stamps in sorted(counted.items()):
        depth.samples.append((key, len(stamps)))
        age.samples.append((key, max(0.0, (now_ms - min(stamps)) / 1000)))
    total = gauge("queue_length", "Messages on each queue (all actors)", ("queue",))
    total.samples.extend(((name,), n) for name, n in sorted(lengths.items()))
    return [depth, age, total]
