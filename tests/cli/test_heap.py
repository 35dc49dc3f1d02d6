"""A sync process settles its start-up heap once: frozen out of the collector, young collections rarer."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledgersync import heap
from ledgersync.cli import _register, app
from ledgersync.demo import Sandbox, sandbox

SETTLE_TWICE = """
import gc, json
from ledgersync import heap
before = gc.get_freeze_count()
first = heap.settle()
frozen = gc.get_freeze_count()
second = heap.settle()
print(json.dumps({"before": before, "first": first, "frozen": frozen, "second": second,
                  "again": gc.get_freeze_count(), "threshold": gc.get_threshold()}))
"""


def test_settling_freezes_the_heap_and_raises_the_young_threshold_once_per_process():
    # In a process of its own: freezing is for the life of a process.
    done = subprocess.run(
        [sys.executable, "-c", SETTLE_TWICE], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    assert seen["before"] == 0 and seen["first"] is True
    assert seen["frozen"] > 1000, "the modules imported at start-up are frozen"
    assert seen["second"] is False and seen["again"] == seen["frozen"], "the second call does nothing"
    assert seen["threshold"][0] == heap.YOUNG_THRESHOLD
    assert seen["threshold"][1:] == list(gc.get_threshold()[1:]), "the older generations keep theirs"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    if not app.registered_groups:
        _register()
    with sandbox(tmp_path) as ready:
        yield ready


def test_the_sync_command_settles_the_heap_once_its_runtime_is_built(box: Sandbox, monkeypatch):
    monkeypatch.setattr(heap, "_settled", False)
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(box.config_path), "connect"], env=box.environ).exit_code == 0
    result = runner.invoke(app, ["--config", str(box.config_path), "sync", "--json"], env=box.environ)
    assert result.exit_code == 0, result.output
    assert heap._settled is True
    assert gc.get_freeze_count() > 1000 and gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
