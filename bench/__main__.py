"""`python -m bench COMMAND`: run one benchmark, or `all` of them into one table of figures and bars.

    python -m bench all --size small|full [--json FILE]
    python -m bench backfill [--records 320] [--no-batch-writes] [--minute-seconds 6] [--no-naive]
                       [--no-single-writes]
    python -m bench cpu [--records 1000,10000] [--backend sqlite,postgres] [--edits 100] [--open-conflicts 0]
    python -m bench instructions [--records 1000] [--edits 300] [--against REV] [--backend sqlite]
    python -m bench reads [--burst 100] [--trickle 30] [--gap 1.667] [--poll-seconds 10]
    python -m bench latency [--mode embedded,distributed] [--samples 100] [--gap 0.25]
    python -m bench companies [--companies 200] [--samples 100] [--storm-seconds 60] [--customers 2]
                       [--no-disconnected]
                       [--workers 2] [--threads 4] [--port P] [--redis-url URL] [--schema-prefix ls]
                       [--samples-file FILE]

Run from the repository root with the project's virtual environment. Figures are noisy on a shared
machine: compare runs made on the same machine in the same state.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import backfill, companies, cpu, instructions, latency, reads
from bench.report import Figure, as_json, summary, table
from bench.world import MINUTE_SECONDS


@dataclass(frozen=True)
class Size:
    backfill: int
    #: The emulated QuickBooks minute of the backfill, in seconds. The full size's is 30 s: its
    #: 3,200 records then run long enough to be held by QuickBooks' limits rather than by the run's
    #: fixed costs and by this machine's two cores, which serve the emulator too (at 6 s, 90% of the
    #: ceiling means the whole run in 12.9 s while the writes alone need 11.6 s; bench/README.md).
    minute_seconds: float
    cpu_records: list[int]
    edits: int
    conflicts: int
    reads: reads.Sizes
    samples: int


SIZES = {
    "small": Size(320, MINUTE_SECONDS, [1000, 10_000], 100, 1000, reads.Sizes(), 100),
    "full": Size(3200, 30.0, [1000, 10_000, 100_000], 300, 1000, reads.Sizes(customers=300, burst=200), 200),
}


def _list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in _list(text)]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    top.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    commands = top.add_subparsers(dest="command", required=True)

    every = commands.add_parser("all", help="every benchmark, one table with the bars")
    every.add_argument("--size", choices=sorted(SIZES), default="small")

    one = commands.add_parser("backfill", help="ledgersync backfill against the naive python-quickbooks loop")
    one.add_argument("--records", type=int, default=320)
    one.add_argument("--no-batch-writes", action="store_true", help="skip the batch_writes: true run")
    one.add_argument(
        "--minute-seconds",
        type=float,
        default=MINUTE_SECONDS,
        help="length of the emulated QuickBooks minute (the limits per minute stay QuickBooks' own)",
    )
    one.add_argument("--no-naive", action="store_true", help="skip the naive loop (and the ratio to it)")
    one.add_argument("--no-single-writes", action="store_true", help="skip the batch_writes: false run")

    one = commands.add_parser("cpu", help="CPU per event of sync, per backend and number of linked records")
    one.add_argument("--records", type=_ints, default=[1000, 10_000])
    one.add_argument("--backend", type=_list, default=["sqlite", "postgres"])
    one.add_argument("--edits", type=int, default=300, help="edits on each side per measured sync")
    one.add_argument(
        "--open-conflicts", type=int, default=0, help="also measure with this many open conflicts"
    )
    one.add_argument(
        "--repeat", type=int, default=1, help="measure each sync this many times and keep the fastest"
    )

    one = commands.add_parser(
        "instructions", help="instructions per event of sync (valgrind), optionally against a revision"
    )
    one.add_argument("--records", type=int, default=1000)
    one.add_argument("--edits", type=int, default=300)
    one.add_argument("--against", metavar="REV", help="also measure this git revision, and the ratio")
    one.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")

    one = commands.add_parser("reads", help="metered reads per changed QuickBooks record")
    defaults = reads.Sizes()
    one.add_argument("--customers", type=int, default=defaults.customers)
    one.add_argument("--burst", type=int, default=defaults.burst)
    one.add_argument("--trickle", type=int, default=defaults.trickle)
    one.add_argument("--gap", type=float, default=defaults.gap, help="seconds between trickled edits")
    one.add_argument("--poll-seconds", type=float, default=defaults.poll_seconds)

    one = commands.add_parser("latency", help="p50/p99 latency both ways, embedded and distributed")
    one.add_argument("--mode", type=_list, default=["embedded", "distributed"])
    one.add_argument("--samples", type=int, default=100)
    one.add_argument("--gap", type=float, default=0.25, help="seconds between edits")

    one = commands.add_parser(
        "companies", help="many companies, distributed: quiet companies' latency beside a 429 storm"
    )
    sizes = companies.Sizes()
    one.add_argument("--companies", type=int, default=sizes.companies)
    one.add_argument("--customers", type=int, default=sizes.customers, help="app customers per tenant")
    one.add_argument(
        "--samples", type=int, default=sizes.samples, help="measured edits per direction in each phase"
    )
    one.add_argument(
        "--storm-seconds",
        type=float,
        default=sizes.storm_seconds,
        help="how long the storm (and each phase's edits) lasts",
    )
    one.add_argument(
        "--no-disconnected", action="store_true", help="skip the phase with the stormed company disconnected"
    )
    one.add_argument("--workers", type=int, default=sizes.workers, help="worker processes")
    one.add_argument("--threads", type=int, default=sizes.threads, help="threads per worker")
    one.add_argument("--port", type=int, help="the web app's port (the emulator's is the next one)")
    one.add_argument("--redis-url", help="a Redis database of your own (flushed before and after)")
    one.add_argument("--schema-prefix", default="ls", help="of the PostgreSQL schemas made and dropped")
    one.add_argument(
        "--samples-file", type=Path, help="also write every sample and the queue's timeline here"
    )
    return top


def run_all(size: str) -> list[Figure]:
    s = SIZES[size]
    steps: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("backfill", lambda: backfill.measure(s.backfill, minute_seconds=s.minute_seconds)),
        (
            "cpu",
            lambda: cpu.measure_all(["sqlite", "postgres"], s.cpu_records, s.edits, s.conflicts, repeat=9),
        ),
        ("reads", lambda: reads.measure(s.reads)),
        ("latency", lambda: latency.measure(["embedded", "distributed"], s.samples)),
    ]
    figures: list[Figure] = []
    for name, step in steps:
        started = time.monotonic()
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        figures += step()
        print(f"-- {name} done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()
    if args.command == "all":
        figures = run_all(args.size)
    elif args.command == "backfill":
        figures = backfill.measure(
            args.records,
            batch_writes=not args.no_batch_writes,
            minute_seconds=args.minute_seconds,
            naive=not args.no_naive,
            single_writes=not args.no_single_writes,
        )
    elif args.command == "cpu":
        figures = cpu.measure_all(args.backend, args.records, args.edits, args.open_conflicts, args.repeat)
    elif args.command == "instructions":
        figures = instructions.measure(args.records, args.edits, args.against, args.backend)
    elif args.command == "reads":
        sizes = reads.Sizes(args.customers, args.burst, args.trickle, args.gap, args.poll_seconds)
        figures = reads.measure(sizes)
    elif args.command == "companies":
        figures = companies.figures_of(args)
    else:
        figures = latency.measure(args.mode, args.samples, args.gap)
    print(table(figures))
    took = time.monotonic() - started
    print(f"\n{summary(figures)}; {took:.0f} s in all (figures are noisy on a shared machine)")
    if args.json:
        args.json.write_text(as_json(figures), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
