"""Latency both ways on a running ledgersync, embedded or distributed, with webhooks, over N samples.

App -> QuickBooks: the app's user changes `notes` of a customer (an UPDATE as edit_record does); the
sample ends when the emulator's copy shows the new value. QuickBooks -> app: the accountant changes
`Notes` in QuickBooks (the emulator's control API, as its UI would); the sample ends when the app's
row shows it. Edits go one every `gap` seconds, each to a different customer, and both sides are
watched every `WATCH` seconds from outside (the emulator's unmetered control API, the app's table),
so a sample is exact to about that. The product runs on its default schedule: the app is probed
every second (and, distributed on PostgreSQL, its outbox triggers' NOTIFY is heard at once, see
bench.live); QuickBooks changes come by webhook, read at once and coalesced over a 2 s window.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from bench.live import Live, running
from bench.report import Figure, at_most, figure
from connectors.app.codec import Codec
from connectors.app.database import make_engine

WATCH = 0.05
BARS = {"app -> QuickBooks": 2.0, "QuickBooks -> app": 5.0}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _edit_app(engine: sa.Engine, app_id: int, notes: str) -> None:
    stamp = Codec(engine.dialect.name).write_timestamp(datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE customers SET notes = :notes, version = version + 1, updated_at = :at,"
                " changed_by = 'user' WHERE id = :id"
            ),
            {"notes": notes, "at": stamp, "id": app_id},
        )


def _sample(
    live: Live,
    ids: list[int],
    prefix: str,
    gap: float,
    edit: Callable[[int, str], object],
    seen: Callable[[], set[str]],
    timeout: float,
) -> list[float]:
    """Edit each of `ids` (notes = f"{prefix} {n}"), one per `gap`; seconds until each was seen."""
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            now = time.perf_counter()
            for value in seen():
                if value in sent and value not in arrived:
                    arrived[value] = now
            time.sleep(WATCH)

    watcher = threading.Thread(target=watch, name="latency-watch", daemon=True)
    watcher.start()
    try:
        for n, app_id in enumerate(ids):
            value = f"{prefix} {n}"
            sent[value] = time.perf_counter()
            edit(app_id, value)
            time.sleep(gap)
        deadline = time.monotonic() + timeout
        while len(arrived) < len(sent) and time.monotonic() < deadline:
            live.check_alive()
            time.sleep(0.2)
    finally:
        done.set()
        watcher.join(timeout=5)
    if len(arrived) < len(sent):
        raise RuntimeError(f"{len(sent) - len(arrived)} of {len(sent)} {prefix} edits never arrived")
    return [arrived[v] - sent[v] for v in sent]


def run_mode(mode: str, samples: int, gap: float, timeout: float = 120) -> dict[str, list[float]]:
    with running(mode, 2 * samples + 1) as live:
        pool = sorted(live.pairs)[1:]
        live.wait_quiet()
        engine = make_engine(live.world.app_url)
        try:
            to_qbo = _sample(
                live,
                pool[:samples],
                "to-qbo",
                gap,
                lambda app_id, value: _edit_app(engine, app_id, value),
                lambda: set(live.quickbooks_notes("to-qbo").values()),
                timeout,
            )
            to_app = _sample(
                live,
                pool[samples : 2 * samples],
                "to-app",
                gap,
                lambda app_id, value: live.world.qbo.edit_record(
                    "Customer", live.pairs[app_id], {"Notes": value}
                ),
                lambda: set(live.app_notes("to-app").values()),
                timeout,
            )
        finally:
            engine.dispose()
    return {"app -> QuickBooks": to_qbo, "QuickBooks -> app": to_app}


def measure(modes: list[str], samples: int = 100, gap: float = 0.25) -> list[Figure]:
    out = []
    for mode in modes:
        for direction, values in run_mode(mode, samples, gap).items():
            g = f"latency {mode}"
            note = f"{len(values)} samples, mean {statistics.fmean(values):.2f} s, max {max(values):.2f} s"
            out.append(figure(g, f"{direction} p50", percentile(values, 50), "s", note=note))
            # The bars are set for PostgreSQL (distributed) and webhooks; embedded is shown against them too.
            bar = BARS[direction]
            p99 = percentile(values, 99)
            out.append(
                figure(g, f"{direction} p99", p99, "s", f"< {bar:g} s", at_most(math.nextafter(bar, 0)))
            )
    return out
