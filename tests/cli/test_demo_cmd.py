"""`ledgersync demo`, run as the README says: the emulator, the example app, OAuth, the whole story."""

from __future__ import annotations

import subprocess
import sys
import time
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


def test_a_kept_demo_directory_can_be_used_again_as_it_says(tmp_path: Path):
    script = Path(sys.executable).with_name("ledgersync")
    kept = tmp_path / "demo"
    env = {"PATH": f"{script.parent}:/usr/bin:/bin", "COLUMNS": "200"}
    done = subprocess.run(
        [str(script), "demo", "--keep", str(kept)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "To use them again:" in done.stdout
    env_file = kept / "ledgersync.env"
    assert env_file.stat().st_mode & 0o077 == 0, "the secrets file is private to its owner"
    # The way the kept README says: source the secrets, start the emulator on its saved state, use it.
    steps = (kept / "README.txt").read_text(encoding="utf-8").splitlines()
    emulator_line = next(line.strip() for line in steps if "ledgersync emulator" in line)
    shell = f"set -a && . ./ledgersync.env && set +a && {emulator_line.removesuffix('&')} "
    emulator = subprocess.Popen(["bash", "-c", f"exec {shell}"], cwd=kept, env=env, stdout=subprocess.DEVNULL)

    def kept_command(args: str) -> subprocess.CompletedProcess[str]:
        """A ledgersync command in the kept directory, with the secrets sourced as its README says."""
        return subprocess.run(
            ["bash", "-c", f"set -a && . ./ledgersync.env && set +a && ledgersync {args}"],
            cwd=kept,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    try:
        for _ in range(100):
            status = kept_command("--config ledgersync.yaml status --json")
            if status.returncode == 0:
                break
            time.sleep(0.2)  # the emulator is still starting
        assert status.returncode == 0, status.stdout + status.stderr
        assert '"connected"' in status.stdout
        synced = kept_command("--config ledgersync.yaml sync --json")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert '"applied": 0' in synced.stdout, "the kept sides still agree: nothing to write"
        again = subprocess.run(
            [str(script), "demo", "--keep", str(kept)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
        assert again.returncode == 2 and "already holds a kept demo" in again.stdout
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
