"""`ledgersync sync --dry-run` prints the plan and writes nothing: not to QuickBooks, not to the
app's database, not to the state store. The same sync without --dry-run then writes, which shows the
checks would have seen a write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.harness import World, world

pytestmark = pytest.mark.integration


def database(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal dumps mean nothing was written."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            return {
                name: sorted(tuple(map(repr, row)) for row in conn.execute(sa.select(table)))
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


def quickbooks_writes(w: World) -> int:
    by_endpoint: dict[str, int] = w.qbo.request_log()["by_endpoint"]
    return sum(n for endpoint, n in by_endpoint.items() if endpoint.startswith("POST"))


def test_sync_dry_run_prints_the_plan_and_writes_nothing_anywhere(tmp_path: Path) -> None:
    with world(tmp_path, distributed=False) as w:
        w.connect()
        # Something to do on both sides: the app's seed goes to QuickBooks, a QuickBooks customer to the app.
        w.qbo.create_record(
            "Customer",
            {"DisplayName": "Björk Guðmundsdóttir", "PrimaryEmailAddr": {"Address": "b@example.is"}},
        )
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        app_before, state_before = database(w.app_url), database(state_url)
        writes_before = quickbooks_writes(w)

        done = w.processes.run("sync", "--dry-run", "--json")

        assert done.returncode == 0, done.stdout + done.stderr
        plan = json.loads(done.stdout)
        planned = {(op["entity"], op["side"], op["kind"]) for op in plan["ops"]}
        assert ("customer", "quickbooks", "create") in planned
        assert ("invoice", "quickbooks", "create") in planned
        assert quickbooks_writes(w) == writes_before
        assert database(w.app_url) == app_before
        assert database(state_url) == state_before

        done = w.processes.run("sync", "--json")

        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["applied"] >= len(plan["ops"])
        assert quickbooks_writes(w) > writes_before
        assert database(w.app_url) != app_before and database(state_url) != state_before
