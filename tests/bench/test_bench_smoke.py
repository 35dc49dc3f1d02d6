"""The benchmark (bench/, not otherwise part of the test run) still works: each kind of run at a toy
size, through `python -m bench` as a user runs it, checking that it measured something real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.ceiling import Limits, latency_bound, records_per_minute

ROOT = Path(__file__).resolve().parents[2]


def bench(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bars met" in done.stdout
    return list(json.loads(out.read_text()))


def by_name(figures: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {f"{f['group']}: {f['name']}": f for f in figures}


def test_the_ceiling_follows_from_quickbooks_limits() -> None:
    limits = Limits()
    assert records_per_minute(limits) == 30 * 40 + (500 - 40)
    assert records_per_minute(limits, single_share=1.0) == 500
    # Batching only customers and items (60% of the mix goes singly): the requests bind first.
    assert round(records_per_minute(limits, single_share=0.6)) == 815
    assert latency_bound(limits, 6.0) == 0.12


def test_cpu_benchmark_seeds_links_and_measures_each_sync(tmp_path: Path) -> None:
    figures = by_name(
        bench(tmp_path, "cpu", "--records", "40,60", "--backend", "sqlite", "--edits", "5", "--repeat", "2")
    )
    flat = figures["cpu sqlite: app edits: per-event CPU at 60 / at 40"]
    assert flat["bar"] == "<= 1.25 x" and isinstance(flat["value"], float) and flat["value"] > 0
    noop = figures["cpu sqlite 40: no-op sync CPU"]
    assert noop["bar"] == "<= 0.2 s" and isinstance(noop["value"], float) and noop["value"] > 0
    for side in ("app edits", "QuickBooks edits"):
        cpu = figures[f"cpu sqlite 40: {side}: CPU per event"]
        assert isinstance(cpu["value"], float) and cpu["passed"] in (True, False)
        assert "SQL per event" in str(cpu["note"]) and "store" in str(cpu["note"])
        decided = figures[f"cpu sqlite 40: {side}: decided per change"]
        assert "captured 5" in str(decided["note"])  # every edit was read, none of the seeded copies


def test_instructions_benchmark_counts_each_sync_under_valgrind(tmp_path: Path) -> None:
    figures = by_name(bench(tmp_path, "instructions", "--records", "20", "--edits", "3"))
    for side in ("app", "quickbooks"):
        counted = figures[f"instructions sqlite 20: {side} edits: instructions per event"]["value"]
        # A sync of a few edits runs millions of instructions; a count of the idle process would be 0.
        assert isinstance(counted, float) and counted > 100_000


def test_backfill_benchmark_compares_with_the_naive_loop(tmp_path: Path) -> None:
    figures = by_name(bench(tmp_path, "backfill", "--records", "6", "--no-batch-writes"))
    naive = figures["backfill 6: naive python-quickbooks loop: records/min"]
    single = "backfill 6: ledgersync backfill, single writes"
    ours = figures[f"{single}: records/min"]
    assert isinstance(naive["value"], float) and naive["value"] > 0
    assert isinstance(ours["value"], float) and ours["value"] > 0
    assert "6 records in" in str(ours["note"])
    assert figures[f"{single}: duplicates in QuickBooks"]["value"] == 0
    assert figures[f"{single}: records missing in QuickBooks"]["value"] == 0
    writing = figures[f"{single}: share of the ceiling while writing"]
    assert isinstance(writing["value"], float) and writing["value"] > 0
    assert all(step in str(writing["note"]) for step in ("match", "read", "write", "settle"))


def test_backfill_benchmark_counts_records_per_minute_of_the_minute_it_is_given(tmp_path: Path) -> None:
    figures = by_name(
        bench(
            tmp_path,
            "backfill",
            "--records",
            "6",
            "--minute-seconds",
            "2",
            "--no-naive",
            "--no-single-writes",
        )
    )
    group = "backfill 6 (2 s minute)"
    ours = figures[f"{group}: ledgersync backfill (batch_writes): records/min"]
    assert not [name for name in figures if "naive" in name or not name.startswith(group)], sorted(figures)
    wall = float(str(ours["note"]).split(" records in ")[1].split(" s,")[0])
    assert isinstance(ours["value"], float) and abs(ours["value"] - 6 / (wall / 2)) < 0.05 * ours["value"]
    assert figures[f"{group}: ledgersync backfill (batch_writes): duplicates in QuickBooks"]["value"] == 0
