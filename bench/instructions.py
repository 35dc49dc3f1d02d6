"""Instructions per event: `bench cpu`'s syncs counted by valgrind (callgrind) instead of timed.

CPU seconds on a shared machine move by 20% and more from one run to the next (other work, the order of
two runs); instructions do not: the same code on the same data executes the same instructions, whatever
else the machine does. So a change to the hot path is judged here, against the revision before it, in
one run; `bench cpu` gives the seconds the bars are set in.

The measured process (`python -m bench.instructions child`, under valgrind with instrumentation off)
seeds a world as `bench cpu` does (SQLite or PostgreSQL, N linked customers; on PostgreSQL only our
process is counted, not the server's), makes E app edits, and says so; the
parent turns callgrind's counting on, lets it sync, turns it off and dumps the count; then the same for
E QuickBooks edits. Only the syncs are counted: seeding, edits and start-up run uncounted (valgrind
still runs them, ~5x slower). `--against REV` measures REV too, from a temporary git worktree of this
repository, and prints the ratio.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.report import Figure, figure

ROOT = Path(__file__).resolve().parent.parent
_STEPS = ("app", "quickbooks")
_TOTALS = re.compile(r"^totals: (\d+)", re.MULTILINE)


def available() -> str | None:
    """Why this cannot run here (None: it can)."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found (Debian: apt-get install valgrind)" if missing else None


def count(tree: Path, records: int, edits: int, backend: str = "sqlite") -> dict[str, int]:
    """Run the child from `tree` (its code, this interpreter) under callgrind; each sync's count, by
    kind of edit ("app", "quickbooks")."""
    with tempfile.TemporaryDirectory(prefix="ls-callgrind-") as out:
        argv = [
            _tool("valgrind"),
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/count.%p",
            sys.executable,
            "-m",
            "bench.instructions",
            "child",
            backend,
            str(records),
            str(edits),
        ]
        child = subprocess.Popen(
            argv, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert child.stdin is not None and child.stdout is not None
        for line in child.stdout:
            word = line.strip()
            if word.startswith("ready "):
                _control(child.pid, "-i", "on")
            elif word.startswith("done "):
                _control(child.pid, "-i", "off")
                _control(child.pid, "-d", word)
            else:
                continue
            child.stdin.write("\n")
            child.stdin.flush()
        stderr = child.stderr.read() if child.stderr else ""
        if child.wait() != 0:
            raise RuntimeError(f"the counted process failed in {tree}:\n{stderr[-3000:]}")
        found: dict[str, int] = {}
        for dump in Path(out).glob("count.*.*"):
            text = dump.read_text(encoding="utf-8", errors="replace")
            step = next((s for s in _STEPS if f"Trigger: dump done {s}" in text), None)
            totals = _TOTALS.search(text)
            if step is not None and totals is not None:
                found[step] = int(totals.group(1))
    if set(found) != set(_STEPS):
        raise RuntimeError(f"callgrind dumped counts for {sorted(found)} only")
    return found


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found")
    return found


def _control(pid: int, *args: str) -> None:
    subprocess.run([_tool("callgrind_control"), *args, str(pid)], check=True, capture_output=True)


def measure(records: int, edits: int, against: str | None = None, backend: str = "sqlite") -> list[Figure]:
    why = available()
    if why is not None:
        raise RuntimeError(f"bench instructions needs valgrind: {why}")
    group = f"instructions {backend} {records:,}"
    edited = min(edits, records - 1)  # as bench cpu's setup: the template record stays untouched
    this = count(ROOT, records, edits, backend)
    name = "{} edits: instructions per event"
    figures = [figure(group, name.format(s), this[s] / edited, "", note="this tree") for s in _STEPS]
    if against is None:
        return figures
    with ExitStack() as stack:
        tree = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ls-against-"))) / "tree"
        subprocess.run(
            [_tool("git"), "worktree", "add", "--quiet", "--detach", str(tree), against], cwd=ROOT, check=True
        )
        stack.callback(subprocess.run, [_tool("git"), "worktree", "remove", "--force", str(tree)], cwd=ROOT)
        # That revision's product, this tree's benchmark (an older one may not have this harness).
        shutil.rmtree(tree / "bench")
        shutil.copytree(ROOT / "bench", tree / "bench", ignore=shutil.ignore_patterns("__pycache__"))
        before = count(tree, records, edits, backend)
    for step in _STEPS:
        figures.append(figure(group, name.format(step), before[step] / edited, "", note=against))
        figures.append(
            figure(group, f"{step} edits: this tree against {against}", this[step] / before[step], "x")
        )
    return figures


def _child(backend: str, records: int, edits: int) -> None:
    """The counted process: seed, then each kind of edit and its sync, waiting on the parent around it."""
    from bench import cpu

    def wait(word: str) -> None:
        print(word, flush=True)
        sys.stdin.readline()

    with ExitStack() as stack:
        setup = cpu.setup(stack, backend, records, edits, 0)
        w = setup.world
        cpu.sync(w)  # the first sync after seeding (cursors, caches): not counted
        cpu.edit_app(w, cpu.spread(setup.pool, setup.edits, 0), "app edit")
        wait("ready app")
        cpu.sync(w)
        wait("done app")
        cpu.edit_quickbooks(w, [setup.pairs[i] for i in cpu.spread(setup.pool, setup.edits, 1)], "qbo edit")
        wait("ready quickbooks")
        cpu.sync(w)
        wait("done quickbooks")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(
            "usage: python -m bench.instructions child RECORDS EDITS (run by python -m bench instructions)"
        )
