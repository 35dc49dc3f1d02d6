"""`ledgersync demo`, run as the README says: the emulator, the example app, OAuth, the whole story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_plays_the_story_and_ends_with_both_sides_equal(tmp_path: Path):
    script = Path(sys.executable).with_name("ledgersync")
    done = subprocess.run(
        [str(script), "demo", "--keep", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(script.parent), "COLUMNS": "200"},
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "connected to company" in out
    assert "QuickBooks customer" in out and "Kai Nakamura-Ortiz" in out
    assert "the app's phone for customer 4 is now (555) 010-7777" in out
    assert "conflict #1 on email" in out and "the app's e-mail is now billing@nakamura-design.example" in out
    assert "balance: 0.00" in out
    assert "the app's notes: 'Prefers e-mail after 5 pm'" in out
    assert "no webhook arrived" in out and "Nakamura & Ortiz Design" in out
    assert ", 0 differing field(s)," in out and "Both sides agree on every synced field." in out
    assert (tmp_path / "demo" / "ledgersync.yaml").exists()  # --keep leaves the config to look at


def test_the_demo_leaves_nothing_behind_by_default(tmp_path: Path):
    before = set(Path("/tmp").glob("ledgersync-demo-*"))
    script = Path(sys.executable).with_name("ledgersync")
    done = subprocess.run(
        [str(script), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(script.parent)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == [] and set(Path("/tmp").glob("ledgersync-demo-*")) == before
