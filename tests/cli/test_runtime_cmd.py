"""connect, backfill, sync and status on a ledgersync.yaml wired to the emulator and the example app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledgersync.cli import _register, app
from ledgersync.demo import Sandbox, sandbox

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    with sandbox(tmp_path) as ready:
        yield ready


def cli(box: Sandbox, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(box.config_path), *args], env=box.environ)
    return result.exit_code, result.output


def in_quickbooks(box: Sandbox, entity: str) -> list[dict[str, object]]:
    return list(box.qbo.emulator.store.all(entity))


def test_backfill_links_what_exists_and_copies_the_rest_then_sync_has_nothing_to_do(box: Sandbox):
    # The accountant already keyed one of the app's customers into QuickBooks (same e-mail).
    box.qbo.create_record(
        "Customer",
        {
            "DisplayName": "Amelie O'Brien (bakery)",
            "PrimaryEmailAddr": {"Address": "amelie@obrien-bakery.example"},
        },
    )
    assert cli(box, "connect")[0] == 0
    code, output = cli(box, "backfill")
    assert code == 0, output
    assert "linked 1 existing record pair(s)" in output and "backfill done" in output
    customers = in_quickbooks(box, "Customer")
    assert len(customers) == 3, "the existing customer was linked, not duplicated"
    assert len(in_quickbooks(box, "Invoice")) == 2 and len(in_quickbooks(box, "Item")) == 3

    code, output = cli(box, "sync", "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert summary["applied"] == 0 and summary["parked"] == 0 and summary["waiting"] == 0

    code, output = cli(box, "status", "--json")
    (row,) = json.loads(output)
    assert code == 0 and row["status"] == "connected" and row["ops"].get("applied", 0) > 0
    assert row["parked"] == []


def test_sync_before_connect_says_what_to_do(box: Sandbox):
    code, output = cli(box, "sync")
    assert code == 2 and "not connected; run `ledgersync connect`" in output


def test_a_revoked_connection_makes_sync_exit_3_and_status_say_reconnect(box: Sandbox):
    assert cli(box, "connect")[0] == 0
    box.qbo.disconnect()
    box.qbo.advance_clock(3700)  # the access token expires too, so the refresh meets the revoked grant
    code, output = cli(box, "sync")
    assert code == 3, output
    code, output = cli(box, "status")
    assert code == 3 and "needs_reauth" in output and "reconnect" in output
    assert cli(box, "connect")[0] == 0
    code, output = cli(box, "sync", "--json")
    assert code == 0, output
    assert len(in_quickbooks(box, "Invoice")) == 2


def test_a_revoke_mid_run_parks_ops_and_a_reconnect_resumes_them_with_no_duplicate(box: Sandbox):
    from engine.model import Side
    from engine.plan import OpStatus
    from engine.settings import load_config
    from engine.state import ConnectionStatus
    from ledgersync.bootstrap import SECTIONS, Runtime

    assert cli(box, "connect")[0] == 0
    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    try:
        runner = runtime.runner()
        for entity in runner.entities:
            runner.poll(Side.APP, entity)
        runner.decide_pending()  # customers and items planned; invoices wait for them
        box.qbo.disconnect()  # the company disconnects the app...
        box.qbo.advance_clock(3700)  # ...and the access token runs out, so the refresh meets it
        runner.apply_pending()
        with runtime.store.session() as s:
            waiting = s.ops(runtime.connection, [OpStatus.WAITING])
            status = s.get_connection(runtime.connection).status  # type: ignore[union-attr]
        assert waiting and status is ConnectionStatus.NEEDS_REAUTH
        assert runner.run_until_quiet().applied == 0  # nothing moves, nothing fails
        with runtime.store.session() as s:
            assert s.ops(runtime.connection, [OpStatus.PARKED]) == []

        oauth = runtime.oauth()  # the user reconnects
        request = oauth.authorization_request()
        runtime.custodian().connect(
            runtime.connection, oauth.exchange_code(oauth.consent_automatically(request))
        )
        runner.run_until_quiet()
        with runtime.store.session() as s:
            assert s.ops(runtime.connection, [OpStatus.WAITING, OpStatus.PENDING, OpStatus.PARKED]) == []
    finally:
        runtime.close()
    assert len(in_quickbooks(box, "Customer")) == 3 and len(in_quickbooks(box, "Item")) == 3
    assert len(in_quickbooks(box, "Invoice")) == 2 and len(in_quickbooks(box, "Payment")) == 1


def test_the_daily_sweep_rereads_quickbooks_and_finds_what_polls_missed(box: Sandbox):
    from engine.model import EntityType, Side
    from engine.settings import load_config
    from engine.state import RecordKey
    from ledgersync.bootstrap import SECTIONS, Runtime

    assert cli(box, "connect")[0] == 0 and cli(box, "backfill")[0] == 0
    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    try:
        with runtime.store.session() as s:
            cursor = s.get_cursor(runtime.connection, Side.QUICKBOOKS, EntityType.CUSTOMER)
        edited = box.qbo.edit_record("Customer", "1", {"Notes": "seen by the sweep"})
        assert runtime.sweep(runtime.connection) >= 1
        with runtime.store.session() as s:
            key = RecordKey(
                connection=runtime.connection,
                side=Side.QUICKBOOKS,
                entity=EntityType.CUSTOMER,
                external_id="1",
            )
            latest = s.latest_event(key)
            assert (
                s.get_cursor(runtime.connection, Side.QUICKBOOKS, EntityType.CUSTOMER) == cursor
            )  # untouched
        assert latest is not None and latest.event.version.seq == int(edited["SyncToken"])
        assert latest.event.fields["notes"] == "seen by the sweep"
    finally:
        runtime.close()


def test_the_token_job_renews_what_expires_before_its_configured_next_run(box: Sandbox):
    from datetime import UTC, datetime, timedelta

    from engine.clock import FakeClock
    from engine.settings import load_config
    from ledgersync.bootstrap import SECTIONS, Runtime

    # Every 30 minutes: the job renews what expires within 30 + 15 (the margin) minutes, no more.
    with box.config_path.open("a", encoding="utf-8") as config:
        config.write("schedule:\n  token_refresh_minutes: 30\n")
    assert cli(box, "connect")[0] == 0  # the access token lasts an hour from now
    clock = FakeClock(datetime.now(UTC) + timedelta(minutes=10))
    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS), clock=clock)
    try:
        # 50 minutes left: it outlives the next run (a 45-minute job would have renewed it now).
        assert runtime.refresh_tokens(clock.now()).refreshed == ()
        clock.advance(10 * 60)  # 40 minutes left: it would expire before the run after next
        assert runtime.refresh_tokens(clock.now()).refreshed == (runtime.connection,)
    finally:
        runtime.close()


def test_a_one_shot_sync_reads_what_webhooks_announced(box: Sandbox):
    import sqlite3
    import time

    from connectors.quickbooks.receiver import create_receiver_app
    from engine.model import EntityType, Side
    from engine.settings import load_config
    from engine.web.serve import serving
    from ledgersync.bootstrap import SECTIONS, Runtime

    assert cli(box, "connect")[0] == 0
    assert cli(box, "backfill")[0] == 0
    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    try:
        with runtime.store.session() as s:
            link = s.find_link(runtime.connection, EntityType.CUSTOMER, Side.APP, "1")
        assert link is not None and link.quickbooks_id is not None
        # Only the webhook receiver runs (no workers): QuickBooks' notification waits in the inbox.
        receiver = create_receiver_app(runtime.store, box.environ["QBO_WEBHOOK_VERIFIER"], runtime.clock)
        with serving(receiver, port=box.web_port):
            box.qbo.edit_record(
                "Customer", link.quickbooks_id, {"PrimaryPhone": {"FreeFormNumber": "555-010-4242"}}
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with runtime.store.session() as s:
                    if s.inbox_pending(10):
                        break
                time.sleep(0.1)
            else:
                raise AssertionError("QuickBooks' webhook never reached the inbox")
    finally:
        runtime.close()

    code, output = cli(box, "sync", "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert summary["webhooks"] >= 1 and summary["applied"] == 1
    app_db = box.app_url.removeprefix("sqlite:///")
    with sqlite3.connect(app_db) as db:
        (phone,) = db.execute("SELECT phone FROM customers WHERE id = 1").fetchone()
    assert phone == "555-010-4242"
    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    try:
        with runtime.store.session() as s:
            assert s.inbox_pending(10) == [], "the sync read the inbox, leaving nothing for later"
    finally:
        runtime.close()


def test_a_conflict_resolved_from_the_cli_while_run_is_going_is_written_within_seconds(box: Sandbox):
    import os
    import subprocess
    import sys
    import time

    import httpx

    from examples.invoicing.edit import edit_record

    assert cli(box, "connect")[0] == 0
    assert cli(box, "backfill")[0] == 0
    edit_record(box.app_url, "customer", 1, {"email": "from-app@example.com"})
    customer = _linked_quickbooks_customer(box, "1")
    box.qbo.edit_record("Customer", customer, {"PrimaryEmailAddr": {"Address": "from-books@example.com"}})
    assert cli(box, "sync")[0] == 0
    code, output = cli(box, "conflicts", "list", "--json")
    (conflict,) = [c for c in json.loads(output) if c["field"] == "email"]

    script = Path(sys.executable).with_name("ledgersync")
    env = {**os.environ, **box.environ}
    run = subprocess.Popen(
        [str(script), "--config", str(box.config_path), "run"],
        cwd=box.config_path.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{box.web_port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        time.sleep(1)  # its first kick is done: the next one is a minute away
        code, output = cli(box, "conflicts", "resolve", str(conflict["id"]), "--take", "app")
        assert code == 0, output
        resolved = time.monotonic()
        while time.monotonic() - resolved < 10:
            email = box.qbo.read_record("Customer", customer)["PrimaryEmailAddr"]["Address"]
            if email == "from-app@example.com":
                break
            time.sleep(0.2)
        assert email == "from-app@example.com", "the resolution waited for the next kick"
    finally:
        run.terminate()
        run.wait(timeout=15)


def _linked_quickbooks_customer(box: Sandbox, app_id: str) -> str:
    from engine.model import EntityType, Side
    from engine.settings import load_config
    from ledgersync.bootstrap import SECTIONS, Runtime

    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    try:
        with runtime.store.session() as s:
            link = s.find_link(runtime.connection, EntityType.CUSTOMER, Side.APP, app_id)
    finally:
        runtime.close()
    assert link is not None and link.quickbooks_id is not None
    return link.quickbooks_id


def test_backfill_json_prints_one_object_with_stable_keys_and_nothing_else(box: Sandbox):
    assert cli(box, "connect")[0] == 0
    result = runner.invoke(app, ["--config", str(box.config_path), "backfill", "--json"], env=box.environ)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the whole of stdout: no progress bar, no "linked ..." line
    assert set(summary) == {
        "linked",
        "ambiguous",
        "captured",
        "decided",
        "applied",
        "outcomes",
        "conflicts",
        "seconds",
        "phases",
    }
    assert summary["applied"] > 0 and summary["linked"] == 0 and summary["conflicts"] == 0
    assert summary["outcomes"].get("applied", 0) > 0
    assert list(summary["phases"]) == ["match", "read", "write", "settle", "analyze"]
