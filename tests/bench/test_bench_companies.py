"""`python -m bench companies` at a toy size (3 companies, a few edits, a storm of seconds), as a user
runs it: every figure is there, measured (a baseline, a storm, a company disconnected), and the
companies converge apart, the disconnected one once it reconnected. The latency bar itself is
judged at 200 companies (bench/README.md), not here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.test_bench_smoke import bench, by_name

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_companies_benchmark_times_the_quiet_companies_beside_a_storm(tmp_path: Path) -> None:
    figures = by_name(
        bench(tmp_path, "companies", "--companies", "3", "--samples", "4", "--storm-seconds", "4")
    )
    group = "companies 3"
    converged = figures[f"{group}: companies converged"]
    assert converged["value"] == 3 and converged["passed"] is True
    assert "after the storm" in str(converged["note"]) and "after it reconnected" in str(converged["note"])
    crossing = figures[f"{group}: records in another tenant's rows or company"]
    assert crossing["value"] == 0 and "load average" in str(crossing["note"])
    for direction in ("app -> QuickBooks", "QuickBooks -> app", "both ways"):
        for phase in ("baseline", "storm", "disconnected"):
            p99 = figures[f"{group}: quiet, {direction}, {phase} p99"]
            assert isinstance(p99["value"], float) and p99["value"] > 0
        for phase in ("storm", "disconnected"):
            ratio = figures[f"{group}: quiet, {direction}: {phase} p99 / baseline p99"]
            assert ratio["bar"] == "<= 2x" and ratio["passed"] in (True, False)
    first = figures[f"{group}: first sync: every company converged in"]
    assert isinstance(first["value"], float) and first["value"] > 0
