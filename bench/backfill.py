"""Backfill throughput: `ledgersync backfill` (batch writes, the default; and with single writes)
against the naive python-quickbooks loop, on the same app data, each on a fresh emulator with
QuickBooks' real limits.

Each runs as a child process, timed from start to exit (interpreter start-up included, for both) and
measured by wait4 (CPU, peak RSS). Records per minute are per emulated minute (6 s unless
`--minute-seconds` says otherwise: the same limits on a longer minute leave the CPU more time per
request, as QuickBooks' real minute does). The emulator's
request log gives the requests, the 429s and the records each side ended with (duplicates: more
QuickBooks records than the app has). ledgersync's own `--json` summary gives the seconds of each of
its steps, so the rate while writing (the decide-and-write loop alone) is shown beside the whole run's.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.appdata import Mix, insert_mix
from bench.ceiling import Limits, records_per_minute
from bench.emulator_proc import RemoteEmulator, emulator_process
from bench.report import Figure, at_least, at_most, figure
from bench.world import MINUTE_SECONDS, Child, run_child, world
from connectors.quickbooks.emulator import EmulatorConfig

QBO_ENTITIES = {"customer": "Customer", "item": "Item", "invoice": "Invoice", "payment": "Payment"}


@dataclass(frozen=True)
class Run:
    label: str
    records: int
    child: Child
    requests: int
    throttled: int
    created: dict[str, int]
    expected: dict[str, int]
    #: The emulated minute's length, seconds.
    minute: float
    #: ledgersync's steps (match, read, write, settle) in seconds; empty for the naive loop.
    phases: dict[str, float] = field(default_factory=dict)
    #: The emulator's CPU seconds during the run (it shares the machine's cores with the run).
    emulator_cpu: float | None = None

    @property
    def per_minute(self) -> float:
        return self.records / (self.child.wall / self.minute)

    @property
    def per_minute_writing(self) -> float | None:
        """Records per emulated minute of the decide-and-write loop alone (None: not known)."""
        seconds = self.phases.get("write")
        return self.records / (seconds / self.minute) if seconds else None

    @property
    def duplicates(self) -> int:
        return sum(max(0, self.created[e] - self.expected[e]) for e in self.expected)

    @property
    def missing(self) -> int:
        return sum(max(0, self.expected[e] - self.created[e]) for e in self.expected)


def _created(qbo: RemoteEmulator, before: dict[str, int]) -> dict[str, int]:
    return {e: len(qbo.list_records(name)) - before[e] for e, name in QBO_ENTITIES.items()}


def _existing(qbo: RemoteEmulator) -> dict[str, int]:
    return {e: len(qbo.list_records(name)) for e, name in QBO_ENTITIES.items()}


def existing_books() -> datetime:
    """When the app's records were last edited: over the hour before the run, as a company's existing
    books are, not all at one instant. Rows stamped within the app capture's overlap (2 s) of the newest
    one are read again by the next read (the overlap); had every row the same stamp, the settling read
    would read the whole app again (a fresh bulk import does pay that once)."""
    return datetime.now(UTC) - timedelta(hours=1)


def ledgersync_run(mix: Mix, *, batch_writes: bool, minute_seconds: float = MINUTE_SECONDS) -> Run:
    emulator = EmulatorConfig(minute_seconds=minute_seconds)
    with world("sqlite", emulator=emulator, batch_writes=batch_writes) as w:
        insert_mix(w.app_url, mix, at=existing_books(), spread=timedelta(minutes=59))
        w.connect()
        before = _existing(w.qbo)
        w.qbo.clear_request_log()
        emulator_cpu = w.qbo.cpu_seconds()
        child = w.child("backfill", "--json")
        emulator_cpu = w.qbo.cpu_seconds() - emulator_cpu
        if child.code != 0:
            raise RuntimeError(f"ledgersync backfill exited {child.code}:\n{child.output[-3000:]}")
        summary = json.loads(child.output[child.output.index("{") :])
        log = w.qbo.request_log()
        label = "ledgersync backfill" + (" (batch_writes)" if batch_writes else ", single writes")
        return Run(
            label,
            mix.total,
            child,
            log["total"],
            log["by_status"].get("429", 0),
            _created(w.qbo, before),
            mix.counts(),
            minute_seconds,
            {name: float(took) for name, took in summary.get("phases", {}).items()},
            emulator_cpu,
        )


def naive_run(mix: Mix, minute_seconds: float = MINUTE_SECONDS) -> Run:
    with world("sqlite") as w, emulator_process(EmulatorConfig(minute_seconds=minute_seconds)) as qbo:
        insert_mix(w.app_url, mix, at=existing_books(), spread=timedelta(minutes=59))
        before = _existing(qbo)
        spec = {
            "client_id": qbo.client_id,
            "client_secret": qbo.client_secret,
            "discovery_url": qbo.discovery_url,
            "api_base": qbo.api_base,
            "app_url": w.app_url,
            "minute_seconds": minute_seconds,
        }
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path.cwd()), env.get("PYTHONPATH")]))
        child = run_child([sys.executable, "-m", "bench.naive", json.dumps(spec)], env, w.directory, 3600)
        if child.code != 0:
            raise RuntimeError(f"the naive loop exited {child.code}:\n{child.output[-3000:]}")
        result = json.loads(child.output.strip().splitlines()[-1])
        if result["failed"]:
            raise RuntimeError(f"the naive loop could not create: {result['failed']}")
        log = qbo.request_log()
        # OAuth calls (authorize, token) are not API requests: left out as for ledgersync (connect).
        requests = log["total"] - log["by_class"].get("OAuth", 0)
        return Run(
            "naive python-quickbooks loop",
            mix.total,
            child,
            requests,
            log["by_status"].get("429", 0),
            _created(qbo, before),
            mix.counts(),
            minute_seconds,
        )


def measure(
    records: int,
    *,
    batch_writes: bool = True,
    minute_seconds: float = MINUTE_SECONDS,
    naive: bool = True,
    single_writes: bool = True,
) -> list[Figure]:
    """The figures of one backfill size. `naive=False` leaves out the naive loop (and the ratio to it),
    `single_writes=False` the run with batch writes off: on a long minute both take far longer than
    the default run (the naive loop waits on each answer, single writes fill a minute with 500 records)."""
    mix = Mix.of(records)
    baseline = naive_run(mix, minute_seconds) if naive else None
    runs = [ledgersync_run(mix, batch_writes=False, minute_seconds=minute_seconds)] if single_writes else []
    if batch_writes or not runs:
        runs.append(ledgersync_run(mix, batch_writes=True, minute_seconds=minute_seconds))
    ceiling = records_per_minute(Limits())
    g = f"backfill {mix.total}" + (
        "" if minute_seconds == MINUTE_SECONDS else f" ({minute_seconds:g} s minute)"
    )
    figures = [] if baseline is None else [_describe(g, baseline)]
    for run in runs:
        best = run is runs[-1]
        figures.append(_describe(g, run))
        if baseline is not None:
            figures.append(
                figure(
                    g,
                    f"{run.label}: ratio to the naive loop",
                    run.per_minute / baseline.per_minute,
                    "x",
                    ">= 2.5 x" if best else "",
                    at_least(2.5) if best else None,
                )
            )
        figures += [
            figure(
                g,
                f"{run.label}: share of QuickBooks' ceiling ({ceiling:,.0f}/min)",
                100 * run.per_minute / ceiling,
                "%",
                ">= 90 %" if best else "",
                at_least(90) if best else None,
                "" if records >= 3000 else "short run: the first rate window flatters it",
            ),
            *_writing(g, run, ceiling),
            figure(g, f"{run.label}: 429s", run.throttled, "", "0", at_most(0)),
            figure(g, f"{run.label}: duplicates in QuickBooks", run.duplicates, "", "0", at_most(0)),
            figure(g, f"{run.label}: records missing in QuickBooks", run.missing, "", "0", at_most(0)),
        ]
    return figures


def _describe(group: str, run: Run) -> Figure:
    c = run.child
    note = (
        f"{run.records} records in {c.wall:.1f} s, {c.cpu:.1f} s CPU, {run.requests} requests, "
        f"{run.throttled} 429s, peak RSS {c.max_rss_mib:.0f} MiB"
        + ("" if run.emulator_cpu is None else f"; the emulator {run.emulator_cpu:.1f} s CPU")
    )
    return figure(group, f"{run.label}: records/min", run.per_minute, "/min", note=note)


def _writing(group: str, run: Run, ceiling: float) -> list[Figure]:
    """The rate of the decide-and-write loop alone, as a share of the ceiling (no bar: the bar is
    the whole run's), with the seconds of every step in the note."""
    rate = run.per_minute_writing
    if rate is None:
        return []
    steps = ", ".join(f"{name} {took:.1f} s" for name, took in run.phases.items())
    name = f"{run.label}: share of the ceiling while writing"
    return [figure(group, name, 100 * rate / ceiling, "%", note=steps)]
