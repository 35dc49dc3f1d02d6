"""Issue 11's "changes in seconds", on real `ledgersync` processes: an app commit read by LISTEN with the
app poll set long (PostgreSQL, distributed), a webhook read without waiting for a poll, deliveries
within the read window costing one CDC call (counted in the emulator's request log), and a webhook
that never came still caught by the CDC poll (embedded)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from connectors.app.codec import Codec
from connectors.app.database import make_engine
from connectors.app.mapping import load_mapping
from connectors.app.triggers import install
from connectors.quickbooks.emulator import EmulatorConfig
from engine.model import EntityType
from examples.invoicing import MAPPING
from tests.integration.harness import World, world

pytestmark = pytest.mark.integration

LONG = 600  # seconds: a poll that never comes within a test


def outbox_mapping(directory: Path) -> Path:
    """The example mapping with every entity read from the trigger-filled outbox."""
    data = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    for entity in data["entities"].values():
        entity["capture"] = {**entity.get("capture", {}), "mode": "outbox"}
    path = directory / "mapping-outbox.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@contextlib.contextmanager
def live(
    tmp_path: Path,
    *,
    distributed: bool,
    app_poll: float = LONG,
    app_probe: float = LONG,
    quickbooks_poll: float = LONG,
    window: float = 2.0,
    outbox: bool = False,
) -> Iterator[World]:
    """A connected world whose processes run (distributed: two workers, scheduler, web; else `run`),
    the emulator delivering webhooks to the web app, and the example data synced once."""
    mapping = outbox_mapping(tmp_path) if outbox else MAPPING
    schedule = {
        "app_poll_seconds": app_poll,
        "app_probe_seconds": app_probe,
        "quickbooks_poll_seconds": quickbooks_poll,
        "quickbooks_read_window_seconds": window,
    }
    with world(
        tmp_path,
        distributed=distributed,
        emulator=EmulatorConfig(minute_seconds=1.0, webhook_batch_window=0.05),
        kick_seconds=3,  # the sweep reads neither side: it decides and applies what is pending
        schedule=schedule,
        webhooks=True,
        mapping=mapping,
    ) as w:
        if outbox:
            engine = make_engine(w.app_url)
            try:
                install(engine, load_mapping(mapping))
            finally:
                engine.dispose()
        w.connect()
        if distributed:
            for n in range(2):
                w.processes.start(f"worker-{n}", "worker", "--threads", "2")
            w.processes.start("scheduler", "scheduler")
            w.processes.start("web", "web")
        else:
            w.processes.start("run", "run")
        # Every process polls once at start: the example data syncs, then all is quiet.
        w.wait_until("the example customers linked", lambda: len(w.links(EntityType.CUSTOMER)) >= 2, 60)
        w.wait_until_quiet(timeout=60, settle=2.0)
        yield w


def app_notes(w: World, app_id: str) -> str | None:
    engine = sa.create_engine(w.app_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            value = conn.execute(sa.text("SELECT notes FROM customers WHERE id = :id"), {"id": int(app_id)})
            return value.scalar_one_or_none()
    finally:
        engine.dispose()


def edit_app(w: World, app_id: str, notes: str) -> None:
    engine = make_engine(w.app_url)
    at = Codec(engine.dialect.name).write_timestamp(datetime.now(UTC))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE customers SET notes = :notes, version = version + 1, updated_at = :at,"
                    " changed_by = 'user' WHERE id = :id"
                ),
                {"notes": notes, "at": at, "id": int(app_id)},
            )
    finally:
        engine.dispose()


def seconds_until(what: str, condition: Callable[[], bool], w: World, timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        w.processes.check_alive()
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def inbox_pending(w: World) -> bool:
    with w.runtime.store.session() as s:
        return bool(s.inbox_pending(1))


def cdc_calls(w: World) -> int:
    return int(w.qbo.request_log()["by_endpoint"].get("cdc", 0))


@pytest.mark.postgres
def test_an_app_commit_is_read_by_listen_within_a_second_with_the_polls_set_long(tmp_path: Path) -> None:
    with live(tmp_path, distributed=True, outbox=True) as w:
        app_id, qbo_id = sorted(w.links(EntityType.CUSTOMER).items())[0]
        took = []
        for n in range(3):
            edit_app(w, app_id, f"listened {n}")
            took.append(
                seconds_until(
                    "the app edit in QuickBooks",
                    lambda n=n: w.qbo.read_record("Customer", qbo_id).get("Notes") == f"listened {n}",
                    w,
                    timeout=30,
                )
            )
        print(f"app -> QuickBooks by LISTEN: {[round(t, 2) for t in took]} s")
        # Read (and written to QuickBooks) well within the app poll's 600 s: only LISTEN asked.
        assert max(took) < 3.0
        assert sorted(took)[1] < 1.5


def test_a_webhook_is_read_at_once_and_deliveries_in_the_window_cost_one_cdc_call(tmp_path: Path) -> None:
    # A long window, so that the burst below falls within it even on a busy machine.
    with live(tmp_path, distributed=False, window=8.0) as w:
        pairs = sorted(w.links(EntityType.CUSTOMER).items())
        first_app, first_qbo = pairs[0]
        # The company idle for a window: the start-up sync's webhooks (some retried: the first ones
        # came before the web app listened) all delivered and read, then a window without any.
        seconds_until("every webhook delivered", lambda: w.qbo.webhook_deliveries()["pending"] == 0, w, 60)
        seconds_until("every delivery read", lambda: not inbox_pending(w), w, 60)
        time.sleep(8.0)
        w.qbo.edit_record("Customer", first_qbo, {"Notes": "hooked"})
        took = seconds_until(
            "the QuickBooks edit in the app", lambda: app_notes(w, first_app) == "hooked", w, timeout=30
        )
        print(f"QuickBooks -> app by webhook: {took:.2f} s")
        assert took < 5.0  # idle: read at once (not after the 8 s window, nor the 600 s CDC poll)
        # Within the window of that read, edits delivered one by one: one more CDC call, at its end.
        before, delivered = cdc_calls(w), len(w.qbo.webhook_deliveries()["deliveries"])
        for n in range(6):
            qbo_id = pairs[n % len(pairs)][1]
            w.qbo.edit_record("Customer", qbo_id, {"Notes": f"burst {n}"})
            time.sleep(0.1)
        last_app = pairs[5 % len(pairs)][0]
        seconds_until("the burst in the app", lambda: app_notes(w, last_app) == "burst 5", w, timeout=30)
        time.sleep(1.0)  # nothing else is due
        deliveries = len(w.qbo.webhook_deliveries()["deliveries"]) - delivered
        assert deliveries >= 3, "the emulator delivered the edits together: nothing to coalesce"
        assert cdc_calls(w) - before == 1, f"{deliveries} deliveries cost {cdc_calls(w) - before} CDC calls"


def test_a_webhook_that_never_came_is_caught_by_the_cdc_poll(tmp_path: Path) -> None:
    with live(tmp_path, distributed=False, quickbooks_poll=3.0) as w:
        app_id, qbo_id = sorted(w.links(EntityType.CUSTOMER).items())[0]
        w.qbo.inject_fault("webhook_drop", seconds=3600)
        w.qbo.edit_record("Customer", qbo_id, {"Notes": "unannounced"})
        took = seconds_until(
            "the unannounced edit in the app", lambda: app_notes(w, app_id) == "unannounced", w, timeout=30
        )
        print(f"QuickBooks -> app by the CDC poll alone: {took:.2f} s")
