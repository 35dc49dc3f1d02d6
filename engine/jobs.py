"""What each scheduled job sends to the workers (the scheduler and embedded mode share it)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from engine.coalesce import ReadRequests
from engine.errors import LedgersyncError
from engine.model import EntityType, Side
from engine.runner import ORDER
from engine.scheduler import Intervals
from engine.settings import Schedule
from engine.workers import Actors

log = logging.getLogger(__name__)


def intervals(schedule: Schedule) -> Intervals:
    return Intervals(
        app_poll=timedelta(seconds=schedule.app_poll_seconds),
        app_probe=timedelta(seconds=schedule.app_probe_seconds),
        quickbooks_poll=timedelta(seconds=schedule.quickbooks_poll_seconds),
        kick=timedelta(seconds=schedule.kick_seconds),
        dispatch=timedelta(seconds=schedule.dispatch_seconds),
        token_refresh=timedelta(minutes=schedule.token_refresh_minutes),
        sweep=timedelta(hours=schedule.sweep_hours),
        alerts=timedelta(seconds=schedule.alerts_seconds),
    )


def poll_app(
    actors: Actors,
    connection: str,
    entities: Iterable[EntityType] = ORDER,
    *,
    scheduled: bool = False,
    delay_ms: int = 0,
) -> None:
    """Ask the workers to read the app's changes of `entities`, in dependency order: at once, or as
    the scheduled round's (on the scheduler's queue, `delay_ms` from now)."""
    wanted = set(entities)
    for entity in ORDER:
        if entity in wanted:
            if scheduled:
                _send(actors.scheduled_poll, connection, Side.APP.value, entity.value, delay_ms=delay_ms)
            else:
                actors.poll.send(connection, Side.APP.value, entity.value)


def _send(actor: Any, *args: str, delay_ms: int = 0) -> None:
    """`actor`'s message now, or `delay_ms` from now."""
    if delay_ms > 0:
        actor.send_with_options(args=args, delay=delay_ms)
    else:
        actor.send(*args)


def read_quickbooks(actors: Actors, connection: str, reads: ReadRequests | None) -> None:
    """Ask for a read of what the inbox's webhooks name: coalesced when `reads`, else at once."""
    delay_ms = 0 if reads is None else reads.request(connection)
    if delay_ms is None:
        return  # a read is already due
    try:
        if delay_ms > 0:
            actors.ingest.send_with_options(args=(connection,), delay=delay_ms)
        else:
            actors.ingest.send(connection)
    except Exception:
        if reads is not None:
            reads.cancel(connection)  # the next request tries again
        raise


#: The jobs sent once for all connections (the others are sent once per connection): `dispatch`
#: finds every connection's resolved conflicts in one query, where a message per connection every
#: two seconds was 100 messages a second with 200 companies.
GLOBAL_JOBS = frozenset({"token_refresh", "alerts", "dispatch"})

#: What the app's change probe found: per entity, the tenants whose rows moved (None: any tenant's).
Moved = Mapping[EntityType, frozenset[str] | None]


@dataclass
class Jobs:
    """Sends one scheduled job, once per connection to sync: `connections` is one connection id or
    says which are active now (connected; a revoked or expired one is skipped, in no one's way).
    `probe` names the app entities worth a poll now, and whose rows moved (a cheap check,
    `connectors.app.probe`): only those tenants' connections poll, found by `tenant_of` (without it,
    every connection polls what moved); `reads` coalesces QuickBooks reads (`engine.coalesce`).

    `spread` (each job's interval): after a job's first sending, which goes to every connection at
    once (a start catches up at once), its messages are spread over its interval, the i-th of n
    connections' delayed by i/n of it. With 200 companies, a poll of each every five seconds sent in
    one tick was 800 messages at once, and an edit's messages queued behind them."""

    actors: Actors
    connections: str | Callable[[], Sequence[str]]
    reads: ReadRequests | None = None
    probe: Callable[[], Moved] | None = None
    tenant_of: Callable[[str], str] | None = None
    spread: Mapping[str, timedelta] | None = None
    #: The connections whose company has webhooks not read yet: `app_poll` asks a read for those only
    #: (None: for every connection). A read asked for each of 200 companies every five seconds was
    #: 200 messages, each holding its company's read gate until a worker took it.
    unread: Callable[[], Collection[str]] | None = None
    _sent: set[str] = field(default_factory=set)

    def active(self) -> Sequence[str]:
        return [self.connections] if isinstance(self.connections, str) else self.connections()

    def __call__(self, job: str) -> None:
        if job in GLOBAL_JOBS:
            send(self.actors, "", job)
            return
        # One probe of the shared app database serves every connection.
        changed = probed(self.probe) if job == "app_probe" else {}
        if job == "app_probe" and not changed:
            return
        failed: Exception | None = None
        active = self.active()
        unread = set(self.unread()) if job == "app_poll" and self.unread is not None else None
        every = self.spread.get(job) if self.spread is not None and job in self._sent else None
        self._sent.add(job)
        for n, connection in enumerate(active):
            try:
                if job == "app_probe":
                    mine = self._moved_for(connection, changed)
                    if mine:
                        poll_app(self.actors, connection, mine)
                else:
                    delay = 0 if every is None else int(every.total_seconds() * 1000 * n / len(active))
                    read = unread is None or connection in unread
                    send(self.actors, connection, job, reads=self.reads, delay_ms=delay, read=read)
            except Exception as error:
                # One connection's failure (its read gate's Redis call, say) does not keep the job
                # from the others; raised after them, so the scheduler sends the job again next tick.
                log.warning("sending %s failed: %s", job, error, extra={"connection": connection})
                failed = failed or error
        if failed is not None:
            raise failed

    def _moved_for(self, connection: str, moved: Moved) -> list[EntityType]:
        """The entities `connection` should poll: those whose rows of its tenant moved."""
        if self.tenant_of is None:
            return list(moved)
        tenant = self.tenant_of(connection)
        return [e for e, tenants in moved.items() if tenants is None or tenant in tenants]


def probed(probe: Callable[[], Moved] | None) -> Moved:
    """The app entities the probe says moved, with whose rows (none when there is no probe or it
    fails)."""
    if probe is None:
        return {}
    try:
        return probe()
    except LedgersyncError as error:
        # The scheduled poll meets the same problem and reports it; the probe only hurries reads.
        log.debug("app change probe failed: %s", error)
        return {}


def send(
    actors: Actors,
    connection: str,
    job: str,
    *,
    reads: ReadRequests | None = None,
    probe: Callable[[], Moved] | None = None,
    delay_ms: int = 0,
    read: bool = True,
) -> None:
    """Send `job` for `connection`; its messages `delay_ms` from now (a read asked for webhooks is
    never delayed: its gate says when, engine.coalesce). `read`: `app_poll` also asks a read of the
    company's webhooks (whose own request was lost)."""
    if job == "app_poll":
        poll_app(actors, connection, scheduled=True, delay_ms=delay_ms)
        if read:
            read_quickbooks(actors, connection, reads)
    elif job == "app_probe":
        changed = probed(probe)
        if changed:
            poll_app(actors, connection, changed)
    elif job == "quickbooks_poll":
        # One message, one metered CDC call for all four entities, on the scheduled rounds' queue.
        _send(actors.poll_side, connection, Side.QUICKBOOKS.value, delay_ms=delay_ms)
    elif job == "kick":
        _send(actors.kick, connection, delay_ms=delay_ms)
    elif job == "dispatch":
        actors.dispatch.send(connection)
    elif job == "token_refresh":
        actors.refresh_tokens.send()
    elif job == "sweep":
        _send(actors.sweep, connection, delay_ms=delay_ms)
    elif job == "alerts":
        actors.alerts.send()
    else:
        raise ValueError(f"unknown job {job!r}")
