"""Metered reads per changed QuickBooks record, on a running embedded ledgersync with webhooks.

Three patterns of accountant edits (one field of distinct customers, through the emulator's control
API, as the QuickBooks UI would), each counted from the emulator's request log: the metered requests
(GET, query, CDC, batch) that answered 2xx from the first edit until every change has reached the app
and a settle period has passed, over the number of changed records.

- burst: B records edited at once (webhooks announce them together), on the default schedule;
- trickle: T records, one every `gap` seconds (each webhook announces one; by default the issue's
  30 edits over 50 s), on each of `schedule.quickbooks_reads`' two schedules. `prompt` (the default)
  reads an idle company at once and coalesces over 2 s: each change is in the app in seconds and the
  trickle costs about one read per 2 s. `frugal` waits a minute after the first change and reads once
  for all announced meanwhile: the whole trickle costs one read, the first change waits about a
  minute. No schedule gives both: one read for 25 records trickled at one a second must wait 25 s
  (engine.settings.READ_SCHEDULES), so the reads bar is frugal's and the latency bar prompt's;
- CDC poll: T records trickled the same way while the emulator drops every webhook, so only the
  scheduled CDC poll (`schedule.quickbooks_poll_seconds`, set short here) finds them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.live import Live, running
from bench.report import Figure, at_most, figure

BAR = 1 / 25
SETTLE = 3.0


@dataclass(frozen=True)
class Sizes:
    customers: int = 200
    burst: int = 100
    trickle: int = 30
    gap: float = 5 / 3
    poll_seconds: float = 10.0


def _wait_arrived(live: Live, prefix: str, count: int, timeout: float) -> float:
    started = time.monotonic()
    while len(live.app_notes(prefix)) < count:
        live.check_alive()
        if time.monotonic() - started > timeout:
            got = len(live.app_notes(prefix))
            raise RuntimeError(f"only {got} of {count} QuickBooks edits ({prefix}) reached the app")
        time.sleep(0.2)
    return time.monotonic() - started


def _edits(live: Live, ids: list[int], prefix: str, gap: float) -> None:
    for n, app_id in enumerate(ids):
        live.world.qbo.edit_record("Customer", live.pairs[app_id], {"Notes": f"{prefix} {n}"})
        if gap:
            time.sleep(gap)


def scenario(live: Live, ids: list[int], prefix: str, gap: float, timeout: float) -> tuple[float, float]:
    """(metered reads per changed record, seconds from the last edit until all arrived)."""
    before = live.metered()
    _edits(live, ids, prefix, gap)
    waited = _wait_arrived(live, prefix, len(ids), timeout)
    time.sleep(SETTLE)
    return (live.metered() - before) / len(ids), waited


def measure(sizes: Sizes = Sizes()) -> list[Figure]:
    # Burst and trickle on the product's default schedule (CDC poll every 300 s: only webhooks lead
    # to reads); the CDC-only pattern on a second system whose poll runs every `poll_seconds`.
    with running("embedded", sizes.customers) as live:
        pool = sorted(live.pairs)[1:]
        burst_ids, trickle_ids = pool[: sizes.burst], pool[sizes.burst : sizes.burst + sizes.trickle]
        live.wait_quiet()  # the start-up sweep and first polls are not the scenarios' reads
        burst, burst_wait = scenario(live, burst_ids, "burst", 0.0, 120)
        trickle, trickle_wait = scenario(live, trickle_ids, "trickle", sizes.gap, 120)
    with running("embedded", sizes.trickle + 1, schedule={"quickbooks_reads": "frugal"}) as live:
        frugal_ids = sorted(live.pairs)[1:]
        live.wait_quiet()
        frugal, frugal_wait = scenario(live, frugal_ids, "frugal", sizes.gap, 240)
    with running(
        "embedded", sizes.trickle + 1, schedule={"quickbooks_poll_seconds": sizes.poll_seconds}
    ) as live:
        cdc_ids = sorted(live.pairs)[1:]
        live.wait_quiet()
        live.world.qbo.inject_fault("webhook_drop", seconds=3600)
        cdc, cdc_wait = scenario(live, cdc_ids, "cdc", sizes.gap, 3 * sizes.poll_seconds + 60)
    g = "reads"
    return [
        figure(
            g,
            f"burst of {len(burst_ids)}: metered reads per changed record",
            burst,
            "",
            "<= 0.04",
            at_most(BAR),
            f"all in the app {burst_wait:.1f} s after the burst",
        ),
        figure(
            g,
            f"trickle of {len(trickle_ids)} over {len(trickle_ids) * sizes.gap:.0f} s,"
            " reads: prompt (default): metered reads per changed record",
            trickle,
            "",
            note=f"last one in the app {trickle_wait:.1f} s after the last edit; the reads bar is frugal's",
        ),
        figure(
            g,
            f"trickle of {len(frugal_ids)} over {len(frugal_ids) * sizes.gap:.0f} s, reads: frugal:"
            " metered reads per changed record",
            frugal,
            "",
            "<= 0.04",
            at_most(BAR),
            f"last one in the app {frugal_wait:.1f} s after the last edit",
        ),
        figure(
            g,
            f"CDC poll only (webhooks dropped, poll every {sizes.poll_seconds:g} s), "
            f"{len(cdc_ids)} trickled: metered reads per changed record",
            cdc,
            "",
            note=f"last one in the app {cdc_wait:.1f} s after the trickle ended",
        ),
    ]
