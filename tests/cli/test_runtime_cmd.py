"""connect, backfill, sync and status on a ledgersync.yaml wired to the emulator and the example app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.demo import Sandbox, sandbox

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
    from engine.bootstrap import SECTIONS, Runtime
    from engine.model import Side
    from engine.plan import OpStatus
    from engine.settings import load_config
    from engine.state import ConnectionStatus

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
    from engine.bootstrap import SECTIONS, Runtime
    from engine.model import EntityType, Side
    from engine.settings import load_config
    from engine.state import RecordKey

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
