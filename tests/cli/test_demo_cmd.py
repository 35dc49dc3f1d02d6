"""`ledgersync run`, as a user runs it: the console script, on embedded defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_ledgersync_run_plays_the_sample_book_and_ends_with_a_field_by_field_comparison(tmp_path: Path):
    script = Path(sys.executable).with_name("ledgersync")
    done = subprocess.run(
        [str(script), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": str(script.parent), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "QuickBooks computed the invoice total: 339.98" in out
    assert "The app now has phone '555-010-9999'" in out
    assert "conflict #1 on customer.email" in out
    assert "The app's invoice balance is now 0.00" in out
    assert "email (open conflict)" in out
    assert list(tmp_path.iterdir()) == []  # the default state store lives in a temporary directory


def test_ledgersync_run_rejects_a_broken_policy_file_naming_the_key(tmp_path: Path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: 1\nentities:\n  customer:\n    conflict: app_win\n")
    script = Path(sys.executable).with_name("ledgersync")
    done = subprocess.run(
        [str(script), "demo", "--policy", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": str(script.parent), "COLUMNS": "200"},
    )
    assert done.returncode == 2
    assert "entities.customer.conflict" in done.stdout + done.stderr
