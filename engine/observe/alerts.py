"""Alerts: which conditions are incidents (pure), and the check that sends each one once per channel.

An incident has a key: its kind, its connection and what it is about (the record, the month). It is
stored when first found, sent once on each channel, and deleted once the condition is gone, so the
same condition found again later is a new incident and is sent again. The store decides who sends:
a process claims an unsent incident in one transaction before sending it, so several schedulers, a
restart or `ledgersync alerts check` never send one twice; a failed send is tried at the next check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from engine.model import Frozen
from engine.observe.notify import Notifier, NotifyError
from engine.plan import OpStatus
from engine.ports import Clock, StateStore
from engine.settings import Alerts
from engine.state import AlertIncident, Conflict, Connection, ConnectionStatus, OpRecord, ParkedRecord

log = logging.getLogger(__name__)

NEEDS_REAUTH = "needs_reauth"
PARKED = "parked"
CONFLICT_WAITING = "conflict_waiting"
QUOTA = "quota"
SUBJECTS = {
    NEEDS_REAUTH: "connection needs re-authorization",
    PARKED: "record parked",
    CONFLICT_WAITING: "conflict waiting for a reviewer",
    QUOTA: "metered QuickBooks reads near the plan's quota",
}
#: How long a claimed incident is another process's to send before it counts as abandoned.
CLAIM = timedelta(minutes=2)
#: More new incidents than this on one channel in one check go out as one digest...
DIGEST_OVER = 10
#: ... which lists this many of them.
DIGEST_LINES = 25


class Usage(NamedTuple):
    """Metered QuickBooks reads this month against the plan's quota."""

    month: str
    reads: int
    quota: int


class Situation(Frozen):
    """What the conditions read about one connection."""

    connection: Connection
    parked_ops: list[OpRecord] = []
    parked_records: list[ParkedRecord] = []
    open_conflicts: list[Conflict] = []
    usage: Usage | None = None


class Incident(Frozen):
    key: str
    kind: str
    connection: str
    message: str

    @property
    def subject(self) -> str:
        return f"{self.connection}: {SUBJECTS[self.kind]}"


def find_incidents(situation: Situation, settings: Alerts, now: datetime) -> list[Incident]:
    """The incidents one connection's situation holds, each keyed by kind, connection and subject."""
    conn = situation.connection
    cid = conn.id
    found: list[Incident] = []
    if conn.status is not ConnectionStatus.CONNECTED:
        found.append(
            Incident(
                key=f"{NEEDS_REAUTH}:{cid}",
                kind=NEEDS_REAUTH,
                connection=cid,
                message=f"Connection {cid} (QuickBooks company {conn.realm_id}) is {conn.status.value}: "
                "its writes wait. Reconnect with `ledgersync connect` or the web app's /connect.",
            )
        )
    for record in situation.parked_ops:
        op = record.op
        found.append(
            Incident(
                key=f"{PARKED}:{cid}:{op.entity.value}:link:{op.link_id}",
                kind=PARKED,
                connection=cid,
                message=f"A {op.kind.value} of {op.entity.value} {op.external_id or '(new)'} to "
                f"{op.side.value} was refused and parked (op {op.op_id}): {record.last_error}. "
                "See `ledgersync status`.",
            )
        )
    for parked in situation.parked_records:
        found.append(
            Incident(
                key=f"{PARKED}:{cid}:{parked.entity.value}:{parked.side.value}:{parked.external_id}",
                kind=PARKED,
                connection=cid,
                message=f"{parked.entity.value} {parked.external_id} in {parked.side.value} could not be "
                f"read and is parked: {parked.reason}. See `ledgersync status`.",
            )
        )
    waiting = timedelta(hours=settings.conflict_hours)
    by_record: dict[str, list[Conflict]] = {}
    for conflict in situation.open_conflicts:
        if now - conflict.created_at >= waiting:
            by_record.setdefault(conflict.link_id, []).append(conflict)
    for link_id, conflicts in sorted(by_record.items()):
        oldest = min(c.created_at for c in conflicts)
        fields = ", ".join(sorted(c.field for c in conflicts))
        found.append(
            Incident(
                key=f"{CONFLICT_WAITING}:{cid}:{link_id}",
                kind=CONFLICT_WAITING,
                connection=cid,
                message=f"A conflict on {conflicts[0].entity.value} (link {link_id}; fields {fields}) has "
                f"waited since {oldest.isoformat(timespec='minutes')}. Review it: `ledgersync conflicts "
                "list` or the web app's /conflicts.",
            )
        )
    usage = situation.usage
    if usage is not None and usage.quota > 0 and usage.reads * 100 >= usage.quota * settings.quota_percent:
        found.append(
            Incident(
                key=f"{QUOTA}:{cid}:{usage.month}",
                kind=QUOTA,
                connection=cid,
                message=f"{usage.reads:,} metered QuickBooks reads in {usage.month}: "
                f"{usage.reads * 100 / usage.quota:.0f}% of the plan's {usage.quota:,}.",
            )
        )
    return found


class AlertReport(NamedTuple):
    #: Incidents open now (on any channel).
    open: list[Incident]
    #: (key, channel) sent by this check.
    sent: list[tuple[str, str]]
    #: (key, channel, error) that failed; tried again at the next check.
    failed: list[tuple[str, str, str]]


@dataclass
class AlertCheck:
    """One run finds every connection's incidents, stores the new ones, clears the gone ones, and
    sends what is unsent on each channel."""

    store: StateStore
    notifiers: Sequence[Notifier]
    settings: Alerts
    clock: Clock
    #: A connection's metered reads this month and the plan's quota (None: not known here).
    usage: Callable[[Connection], Usage | None] = field(default=lambda _: None)
    #: The configured connection, checked even before `connect` stored it.
    connection: str | None = None

    def situations(self) -> list[Situation]:
        with self.store.session() as s:
            found = [
                Situation(
                    connection=c,
                    parked_ops=s.ops(c.id, [OpStatus.PARKED]),
                    parked_records=s.parked_records(c.id),
                    open_conflicts=s.list_conflicts(c.id, open_only=True),
                )
                for c in self._connections(s.list_connections())
            ]
        return [situation.model_copy(update={"usage": self._usage(situation)}) for situation in found]

    def _connections(self, stored: list[Connection]) -> list[Connection]:
        if self.connection is None or any(c.id == self.connection for c in stored):
            return stored
        return [*stored, Connection(id=self.connection)]

    def _usage(self, situation: Situation) -> Usage | None:
        try:
            return self.usage(situation.connection)
        except Exception as error:  # the quota is one condition of four: the others are still checked
            log.warning("metered reads unknown: %s", error, extra={"connection": situation.connection.id})
            return None

    def run(self) -> AlertReport:
        now = self.clock.now()
        situations = self.situations()
        incidents = [i for s in situations for i in find_incidents(s, self.settings, now)]
        # A quota this check cannot see (no count in this process) is not a quota that cleared.
        unseen = [f"{QUOTA}:{s.connection.id}:" for s in situations if s.usage is None]
        with self.store.session() as s:
            s.clear_incidents({i.key for i in incidents}, keep=unseen)
            s.open_incidents(
                [
                    AlertIncident(opened_at=now, channel=n.channel, **i.model_dump())
                    for i in incidents
                    for n in self.notifiers
                ]
            )
            claimed = s.claim_unsent(now, CLAIM, [n.channel for n in self.notifiers])
        subjects = {i.key: i.subject for i in incidents}
        sent: list[tuple[str, str]] = []
        failed: list[tuple[str, str, str]] = []
        for notifier in self.notifiers:
            mine = [i for i in claimed if i.channel == notifier.channel]
            # Many at once (a backfill that parked a hundred records) is one digest, not a flood.
            for part in [mine] if len(mine) > DIGEST_OVER else [[one] for one in mine]:
                problem = self._send(notifier, part, subjects)
                with self.store.session() as s:
                    for incident in part:
                        s.incident_sent(incident.key, incident.channel, self.clock.now(), problem)
                if problem is None:
                    sent += [(i.key, i.channel) for i in part]
                else:
                    failed += [(i.key, i.channel, problem) for i in part]
        return AlertReport(incidents, sent, failed)

    def _send(self, notifier: Notifier, part: list[AlertIncident], subjects: dict[str, str]) -> str | None:
        """Send one notification for `part` (one incident, or a digest); the error, if it failed."""
        if len(part) == 1:
            subject = subjects.get(part[0].key, part[0].kind)
            text = part[0].message
        else:
            subject = f"{len(part)} incidents need attention"
            lines = [f"- {subjects.get(i.key, i.kind)}: {i.message}" for i in part[:DIGEST_LINES]]
            if len(part) > DIGEST_LINES:
                lines.append(f"... and {len(part) - DIGEST_LINES} more: see `ledgersync status`.")
            text = "\n".join(lines)
        context = {"alert": part[0].key, "alerts": len(part), "channel": notifier.channel}
        try:
            notifier.send(subject, text)
        except NotifyError as error:
            log.warning("alert not sent, will retry: %s", error, extra=context)
            return str(error)
        log.info("alert sent: %s", subject, extra=context)
        return None
