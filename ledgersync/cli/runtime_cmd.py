"""`ledgersync run | worker | scheduler | web | sync | backfill`: running the configured sync.

`run` is embedded mode: web app, scheduler and worker threads in one process on the in-process
broker. `worker`, `scheduler` and `web` are distributed mode, on the Redis broker from the config.

`--json` output is stable. `sync`: {webhooks, captured, decided, applied, conflicts, parked,
parked_records, waiting}; `sync --dry-run`: {ops: [...], conflicts: [...]}; `backfill`: {linked,
ambiguous, captured, decided, applied, outcomes: {outcome: n}, conflicts, seconds, phases: {match,
read, write, settle, analyze}} (seconds each). Errors go to stderr with the exit codes of cli.context.
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from engine.errors import ConfigurationError, LedgersyncError, NeedsReauthorizationError
from engine.plan import OpStatus
from engine.state import ConnectionStatus
from ledgersync.cli.context import EXIT_NEEDS_REAUTH, EXIT_PARKED, err, fail, load, out

Host = Annotated[str | None, typer.Option(help="Address to listen on (default: web.host in the config).")]
Port = Annotated[int | None, typer.Option(help="Port to listen on (default: web.port in the config).")]
TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Only this tenant's connection (default: every one).")
]


def register(app: typer.Typer) -> None:
    for name, fn in (
        ("run", run),
        ("worker", worker),
        ("scheduler", scheduler),
        ("web", web),
        ("sync", sync),
        ("backfill", backfill),
    ):
        app.command(name)(fn)


def _runtime(ctx: typer.Context, *, workers: bool = False) -> Any:
    """The configured runtime; `workers`: this process runs actors shared by every company. The
    process's start-up heap is settled once it is built (ledgersync.heap)."""
    from ledgersync import heap
    from ledgersync.bootstrap import Runtime

    config = load(ctx)
    try:
        runtime = Runtime(config, workers=workers)
    except ConfigurationError as error:
        fail(str(error))
    heap.settle()
    return runtime


def _serve(app: Any, host: str, port: int) -> None:
    import uvicorn

    out.print(
        f"web app on http://{host}:{port} (the review console: sign in at /login with a login from "
        "`ledgersync users add`; health at /healthz)"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _reads(runtime: Any) -> Any:
    """Coalesced QuickBooks reads (engine.coalesce): one gate per broker, in Redis when there is one."""
    from engine.coalesce import LocalGate, ReadRequests, RedisGate

    settings = runtime.config.settings
    if settings.broker_url:
        import redis

        gate: Any = RedisGate(redis.Redis.from_url(settings.broker_url))
    else:
        gate = LocalGate()
    schedule = settings.schedule
    return ReadRequests(
        gate, schedule.quickbooks_read_window_seconds, delay=schedule.quickbooks_read_delay_seconds
    )


def _app_watch(runtime: Any, actors: Any, active: Any) -> tuple[Any, Any]:
    """The app's cheap change probe and, on PostgreSQL with outbox capture, its NOTIFY listener; each
    asks for a poll of what changed (the listener only while `active()`: the scheduler holds the lease)."""
    from connectors.app.listen import listener_for
    from connectors.app.probe import ChangeProbe
    from engine import jobs

    try:
        # Any connection's connector reads the shared tables' marks (every tenant's changes).
        app = runtime.app_connector(next(iter(runtime.active_connections()), None))
    except LedgersyncError as error:
        out.print(f"app changes are read by the scheduled poll only: {error}")
        return None, None
    probe = ChangeProbe(app.engine, app.layouts, app.mapping.outbox_table)
    outbox = [e for e, layout in app.layouts.items() if layout.spec.capture.mode == "outbox"]

    def changed(entities: Any) -> None:
        if active():
            for connection in runtime.active_connections():
                jobs.poll_app(actors, connection, entities)

    tables = [t for e in outbox for t in (app.layouts[e].spec.table, *_child(app.layouts[e]))]
    listener = listener_for(app.engine, app.mapping.outbox_table, outbox, changed, tables)
    return probe.moved, listener


def _scheduler(runtime: Any, actors: Any, reads: Any, probe: Any, lease: Any = None) -> Any:
    """The scheduler sending every periodic job for the runtime's connections (`run` and `scheduler`)."""
    from engine import jobs
    from engine.scheduler import Scheduler

    intervals = jobs.intervals(runtime.config.settings.schedule)
    send = jobs.Jobs(
        actors,
        runtime.active_connections,
        reads,
        probe,
        runtime.tenant_of,
        intervals.of(),
        runtime.unread_webhooks,
    )
    return Scheduler(send, intervals, runtime.clock.now, lease)


def _child(layout: Any) -> list[str]:
    return [] if layout.child is None else [layout.child.table]


def run(ctx: typer.Context, host: Host = None, port: Port = None) -> None:
    """Embedded mode: web app, scheduler and workers in this process (SQLite and nothing else needed)."""
    from engine import jobs
    from engine.broker import in_process_worker, make_broker
    from engine.workers import build_actors

    runtime = _runtime(ctx, workers=True)
    settings = runtime.config.settings
    try:
        broker = make_broker(None)
        reads = _reads(runtime)
        actors = build_actors(broker, runtime.services(reads))
        probe, listener = _app_watch(runtime, actors, lambda: True)
        worker = in_process_worker(broker, threads=2)
        scheduler = _scheduler(runtime, actors, reads, probe)
        worker.start()
        thread = threading.Thread(target=scheduler.run, name="scheduler", daemon=True)
        thread.start()
        if listener is not None:
            listener.start()
        try:
            # The webhook path: store the delivery, ask for its company's read (coalesced); the ingest
            # actor journals what it names and sends each changed record to reconcile, then apply.
            app = runtime.web_app(
                on_webhook=lambda connection: jobs.read_quickbooks(actors, connection, reads), broker=broker
            )
            _serve(app, host or settings.web.host, port or settings.web.port)
        finally:
            if listener is not None:
                listener.stop()
            scheduler.stop()
            thread.join(timeout=5)
            worker.stop()
    finally:
        runtime.close()


def worker(
    ctx: typer.Context, threads: Annotated[int, typer.Option(min=1, help="Worker threads.")] = 4
) -> None:
    """A worker process on the Redis broker (run as many as you like)."""
    from engine.broker import QUEUES, in_process_worker, make_broker
    from engine.workers import build_actors

    runtime = _runtime(ctx, workers=True)
    if not runtime.config.settings.broker_url:
        fail("a worker needs broker_url (Redis) in the config; for one process use `ledgersync run`")
    broker = make_broker(runtime.config.settings.broker_url)
    build_actors(broker, runtime.services(_reads(runtime)))  # the ingest actor opens the read gate
    consumer = in_process_worker(broker, threads=threads)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    consumer.start()
    out.print(f"worker running with {threads} threads on {', '.join(QUEUES)}")
    try:
        stop.wait()
    finally:
        consumer.stop()
        broker.close()
        runtime.close()


def scheduler(ctx: typer.Context) -> None:
    """The scheduler (one active instance, guarded by a Redis lease; extra ones stand by)."""
    import redis

    from engine.broker import make_broker
    from engine.scheduler import RedisLease, Scheduler
    from engine.workers import build_actors

    runtime = _runtime(ctx, workers=True)
    url = runtime.config.settings.broker_url
    if not url:
        fail("the scheduler needs broker_url (Redis) in the config; for one process use `ledgersync run`")
    broker = make_broker(url)
    reads = _reads(runtime)
    actors = build_actors(broker, runtime.services(reads))
    lease = RedisLease(redis.Redis.from_url(url))
    holder: list[Scheduler] = []
    probe, listener = _app_watch(runtime, actors, lambda: bool(holder) and holder[0].active)
    loop = _scheduler(runtime, actors, reads, probe, lease)
    holder.append(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: loop.stop())
    out.print("scheduler running" + (" (listening for app changes)" if listener else ""))
    if listener is not None:
        listener.start()
    try:
        loop.run()
    finally:
        if listener is not None:
            listener.stop()
        broker.close()
        runtime.close()


def web(ctx: typer.Context, host: Host = None, port: Port = None) -> None:
    """The web app alone: OAuth connect, the QuickBooks webhook receiver, conflicts, /healthz, /metrics."""
    runtime = _runtime(ctx, workers=True)
    checks = {}
    on_webhook = None
    broker = None
    url = runtime.config.settings.broker_url
    if url:
        import redis

        from engine import jobs
        from engine.broker import make_broker
        from engine.workers import build_actors

        client = redis.Redis.from_url(url)
        checks["broker"] = lambda: bool(client.ping())
        # A stored webhook asks the workers to read its company now (coalesced, engine.coalesce).
        broker = make_broker(url)
        reads = _reads(runtime)
        actors = build_actors(broker, runtime.services(reads))

        def on_webhook(connection: str) -> None:
            jobs.read_quickbooks(actors, connection, reads)

    try:
        _serve(
            runtime.web_app(checks, on_webhook, broker),
            host or runtime.config.settings.web.host,
            port or runtime.config.settings.web.port,
        )
    finally:
        runtime.close()


def sync(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing anywhere.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    tenant: TenantOption = None,
) -> None:
    """Sync in this process until nothing is pending (`--dry-run`: only show what would be written):
    every connection, or `--tenant`'s; one that needs reconnecting does not stop the others (exit 3)."""
    from engine.dryrun import dry_run as plan_only

    runtime = _runtime(ctx)
    try:
        if dry_run:
            one = runtime.connection_of(tenant) if tenant else runtime.connection
            sides = runtime.sides(one)
            # The dry run holds one store transaction open throughout; on SQLite that is the write
            # lock, so the QuickBooks token must be in hand before it (reading it inside would wait
            # for our own lock, and every QuickBooks read would fail after the busy timeout).
            runtime.custodian(one).access_token(one)
            report = plan_only(runtime.store, sides, runtime.policy_for(one), runtime.clock, one)
            _print_plan(report, as_json)
            return
        targets = _targets(runtime, tenant)
        # What webhooks announced first (one CDC call per company), then both sides until quiet.
        webhooks = 0
        only = targets[0] if tenant else None
        while (inbox := runtime.ingest_webhooks(only)).entries:
            webhooks += inbox.events
            if inbox.failed:
                break  # those stay in the inbox; the polls below still read QuickBooks' changes
        stats, refused = _run_each(runtime, targets)
        parked, unreadable, waiting = [], [], []
        with runtime.store.session() as s:
            for target in targets:
                parked += s.ops(target, [OpStatus.PARKED])
                unreadable += s.parked_records(target)
                waiting += s.ops(target, [OpStatus.WAITING])
            stored = [c for c in (s.get_connection(t) for t in targets) if c is not None]
        down = [c for c in stored if c.status is not ConnectionStatus.CONNECTED]
        if down or refused:
            named = ", ".join(f"{c.id} is {c.status}" for c in down) or f"{refused[0]} needs reconnecting"
            fail(f"connection {named}; reconnect with `ledgersync connect`", EXIT_NEEDS_REAUTH)
        summary = {
            "webhooks": webhooks,
            "captured": stats.captured,
            "decided": stats.decided,
            "applied": stats.applied,
            "conflicts": stats.conflicts,
            "parked": len(parked),
            # Records read but not readable (see `ledgersync status`): they wait for a fix in place.
            "parked_records": len(unreadable),
            "waiting": len(waiting),
        }
        out.print_json(json.dumps(summary)) if as_json else out.print(
            ", ".join(f"{k} {v}" for k, v in summary.items())
        )
    except NeedsReauthorizationError as error:
        fail(f"{error}; reconnect with `ledgersync connect`", EXIT_NEEDS_REAUTH)
    except LedgersyncError as error:
        fail(str(error))
    finally:
        runtime.close()
    if waiting:
        raise typer.Exit(EXIT_NEEDS_REAUTH)
    if parked or unreadable:
        raise typer.Exit(EXIT_PARKED)


def _targets(runtime: Any, tenant: str | None) -> list[str]:
    """The connections a command works on: `tenant`'s, else every stored one (the default one when
    none is stored yet, whose runner then says to connect)."""
    if tenant:
        return [runtime.connection_of(tenant)]
    return [c.id for c in runtime.connections() if c.realm_id] or [runtime.connection]


def _run_each(runtime: Any, targets: list[str]) -> tuple[Any, list[str]]:
    """Each connection until quiet: the stats of all, and those that need reconnecting (with one
    target, its error is raised as it was before there were several)."""
    from engine.runner import RunStats

    stats = RunStats()
    refused: list[str] = []
    for target in targets:
        try:
            _add(stats, runtime.runner(target).run_until_quiet())
        except NeedsReauthorizationError as error:
            if len(targets) == 1:
                raise
            err.print(f"{target}: {error}", highlight=False)  # the others sync on
            refused.append(target)
    return stats, refused


def _add(total: Any, one: Any) -> None:
    for name in ("captured", "duplicates", "stale", "decided", "applied", "rejected"):
        setattr(total, name, getattr(total, name) + getattr(one, name))
    total.conflicted |= one.conflicted
    for outcome, n in one.outcomes.items():
        total.outcomes[outcome] = total.outcomes.get(outcome, 0) + n


def _print_plan(report: Any, as_json: bool) -> None:
    ops = [
        {
            "entity": op.entity,
            "side": op.side,
            "kind": op.kind,
            "external_id": op.external_id,
            "fields": sorted(op.fields),
            "reason": op.reason,
        }
        for op in report.ops
    ]
    conflicts = [
        {"entity": c.entity, "field": c.field, "app": c.app, "quickbooks": c.quickbooks}
        for c in report.conflicts
    ]
    if as_json:
        out.print_json(json.dumps({"ops": ops, "conflicts": conflicts}, default=str))
        return
    table = Table(title=f"dry run: {len(ops)} write(s), {len(conflicts)} conflict(s); nothing was written")
    for column in ("entity", "to", "kind", "id", "fields", "why"):
        table.add_column(column)
    for op in ops:
        table.add_row(
            op["entity"],
            op["side"],
            op["kind"],
            op["external_id"] or "(new)",
            ", ".join(op["fields"]),
            op["reason"],
        )
    out.print(table)
    for c in conflicts:
        out.print(f"conflict: {c['entity']}.{c['field']}: app={c['app']!r} quickbooks={c['quickbooks']!r}")


def backfill(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable summary, no progress bar.")
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="The tenant whose company to fill (default: the default one)."),
    ] = None,
) -> None:
    """First sync of existing records: link what already exists on both sides, then push and pull the rest.

    On a terminal a progress bar shows the records written, their rate per minute and the time left.
    """
    import time

    from engine.backfill import read_both_sides, settle, write_pending
    from engine.runner import RunStats
    from ledgersync.cli.progress import backfill_progress

    runtime = _runtime(ctx)
    try:
        started = time.monotonic()
        #: Seconds spent in each step (matching, reading both sides, deciding and writing, settling).
        phases: dict[str, float] = {}
        connection = runtime.connection_of(tenant) if tenant else runtime.connection
        report = runtime.match(connection)
        phases["match"] = time.monotonic() - started
        linked = sum(len(pairs) for pairs in report.linked.values())
        if not as_json:
            out.print(f"linked {linked} existing record pair(s) by match keys")
            for entity, key, value in report.ambiguous:
                out.print(
                    f"  not linked: {entity} {key} {value!r} is shared by several records; link by hand"
                )
        runner = runtime.runner(connection)
        stats = RunStats()
        with backfill_progress(out, quiet=as_json) as bar:
            bar.step("reading both sides", len(runner.connectors))
            read_both_sides(runner, stats, bar.advance)
            with runtime.store.session() as s:
                pending = s.count_pending_records(connection)
            phases["read"] = time.monotonic() - started - sum(phases.values())
            bar.step("writing", pending)
            write_pending(runner, stats, bar.advance)
        phases["write"] = time.monotonic() - started - sum(phases.values())
        more = RunStats()
        settle(runner, more)
        phases["settle"] = time.monotonic() - started - sum(phases.values())
        runtime.store.analyze()  # statistics for the tables the backfill filled (PostgreSQL)
        seconds = time.monotonic() - started
        phases["analyze"] = seconds - sum(phases.values())
        written = stats.applied + more.applied
        if as_json:
            summary = {
                "linked": linked,
                "ambiguous": len(report.ambiguous),
                "captured": stats.captured + more.captured,
                "decided": stats.decided + more.decided,
                "applied": written,
                "outcomes": {
                    k: stats.outcomes.get(k, 0) + more.outcomes.get(k, 0)
                    for k in {*stats.outcomes, *more.outcomes}
                },
                "conflicts": len(stats.conflicted | more.conflicted),
                "seconds": round(seconds, 3),
                "phases": {name: round(took, 3) for name, took in phases.items()},
            }
            out.print_json(json.dumps(summary))
        else:
            rate = f", {written / seconds * 60:,.0f} writes/min" if seconds > 0 and written else ""
            out.print(f"backfill done: {written} write(s) in {seconds:.1f} s{rate}")
    except LedgersyncError as error:
        fail(str(error))
    finally:
        runtime.close()
