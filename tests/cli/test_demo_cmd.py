"""`ledgersync demo`, run as the README says: the emulator, the example app, OAuth, the whole story."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("ledgersync")
#: The PATH of the kept demo's commands: the venv's scripts, then bash and the coreutils.
PATH = f"{SCRIPT.parent}:/usr/bin:/bin"


@dataclass(frozen=True)
class KeptDemo:
    done: subprocess.CompletedProcess[str]
    directory: Path


@pytest.fixture(scope="module")
def kept_demo(tmp_path_factory: pytest.TempPathFactory) -> KeptDemo:
    """`ledgersync demo --keep DIR`, played once for the tests of what it prints and of what it keeps."""
    kept = tmp_path_factory.mktemp("kept") / "demo"
    done = subprocess.run(
        [str(SCRIPT), "demo", "--keep", str(kept)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": PATH, "COLUMNS": "200"},
    )
    return KeptDemo(done, kept)


def test_the_demo_plays_the_story_and_ends_with_both_sides_equal(kept_demo: KeptDemo):
    done = kept_demo.done
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "connected to company" in out
    console = re.search(
        r"the review console: (http://127\.0\.0\.1:\d+)/ \(sign in as demo, password (\S+)\)", out
    )
    assert console is not None, out
    # The login it printed works: the demo signs in with it and the console lists the conflict.
    assert f"the review console, signed in as demo, lists it at {console.group(1)}/conflicts" in out
    assert "QuickBooks customer" in out and "Kai Nakamura-Ortiz" in out
    assert "the app's phone for customer 4 is now (555) 010-7777" in out
    assert "conflict #1 on email" in out and "the app's e-mail is now billing@nakamura-design.example" in out
    assert "with 2.96 sales tax" in out and "tax 2.96" in out  # 8% of 2 x 18.50
    assert "balance: 0.00" in out
    assert "the app's notes: 'Prefers e-mail after 5 pm'" in out
    assert "no webhook arrived" in out and "Nakamura & Ortiz Design" in out
    assert ", 0 differing field(s)," in out and "Both sides agree on every synced field." in out
    assert (kept_demo.directory / "ledgersync.yaml").exists()  # --keep leaves the config to look at


def test_the_demo_leaves_nothing_behind_by_default(tmp_path: Path):
    before = set(Path("/tmp").glob("ledgersync-demo-*"))
    done = subprocess.run(
        [str(SCRIPT), "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(SCRIPT.parent)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == [] and set(Path("/tmp").glob("ledgersync-demo-*")) == before


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until something accepts connections on 127.0.0.1:`port`; fails if `process` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the kept emulator exited with {process.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"the kept emulator did not listen on {port} in {timeout} s"
        time.sleep(0.1)


def test_a_kept_demo_directory_can_be_used_again_as_it_says(kept_demo: KeptDemo):
    done, kept = kept_demo.done, kept_demo.directory
    env = {"PATH": PATH, "COLUMNS": "200"}
    assert done.returncode == 0, done.stdout + done.stderr
    assert "To use them again:" in done.stdout
    assert "sign in as demo, password $LEDGERSYNC_CONSOLE_PASSWORD" in done.stdout
    env_file = kept / "ledgersync.env"
    assert env_file.stat().st_mode & 0o077 == 0, "the secrets file is private to its owner"
    # The way the kept README says: source the secrets, start the emulator on its saved state, use it.
    steps = (kept / "README.txt").read_text(encoding="utf-8").splitlines()
    emulator_line = next(line.strip() for line in steps if "ledgersync emulator" in line)
    port = re.search(r"--port (\d+)", emulator_line)
    assert port, emulator_line
    shell = f"set -a && . ./ledgersync.env && set +a && exec {emulator_line.removesuffix('&')}"
    emulator = subprocess.Popen(["bash", "-c", shell], cwd=kept, env=env, stdout=subprocess.DEVNULL)

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
        wait_for_port(int(port.group(1)), emulator)
        status = kept_command("--config ledgersync.yaml status --json")
        assert status.returncode == 0, status.stdout + status.stderr
        assert '"connected"' in status.stdout
        synced = kept_command("--config ledgersync.yaml sync --json")
        assert synced.returncode == 0, synced.stdout + synced.stderr
        # A sync that cannot reach QuickBooks also exits 0 with nothing applied: it must have read it.
        assert "did not answer" not in synced.stderr, synced.stderr
        assert '"applied": 0' in synced.stdout, "the kept sides still agree: nothing to write"
        again = subprocess.run(
            [str(SCRIPT), "demo", "--keep", str(kept)],
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
