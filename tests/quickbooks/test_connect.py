"""`ledgersync connect` and `ledgersync status`, run through Typer against the emulator (auto-consent)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from connectors.quickbooks.crypto import TokenCipher, generate_key
from connectors.quickbooks.emulator.server import EmulatorHandle
from engine.cli import connect_cmd
from engine.state import ConnectionStatus
from engine.store import SqlStateStore


def cli() -> typer.Typer:
    app = typer.Typer()
    connect_cmd.register(app)
    return app


def test_connect_then_status_then_reconnect_after_a_disconnect(qbo: EmulatorHandle, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    key = generate_key()
    env = {
        "LEDGERSYNC_QBO_ENVIRONMENT": qbo.base_url,
        "LEDGERSYNC_QBO_CLIENT_ID": qbo.client_id,
        "LEDGERSYNC_QBO_CLIENT_SECRET": qbo.client_secret,
        "LEDGERSYNC_SECRET_KEY": key,
        "LEDGERSYNC_STATE_STORE": url,
    }
    runner = CliRunner()
    result = runner.invoke(cli(), ["connect", "--connection", "acme"], env=env)
    assert result.exit_code == 0, result.output
    assert "state=" in result.output and f"company {qbo.realm_id}" in result.output
    assert qbo.client_secret not in result.output

    result = runner.invoke(cli(), ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["id"] == "acme" and row["status"] == "connected" and row["realm_id"] == qbo.realm_id
    assert row["warning"] is None and row["metered_reads"] is None

    store = SqlStateStore(url)
    try:
        with store.session() as session:
            stored = session.get_connection("acme")
            assert stored is not None and stored.tokens_encrypted is not None
            session.save_connection(stored.model_copy(update={"status": ConnectionStatus.NEEDS_REAUTH}))
        first = TokenCipher(key).decrypt(stored.tokens_encrypted)

        result = runner.invoke(cli(), ["status"], env=env)
        assert result.exit_code == 3 and "ledgersync connect --connection acme" in result.output

        result = runner.invoke(cli(), ["connect", "--connection", "acme"], env=env)
        assert result.exit_code == 0, result.output
        with store.session() as session:
            again = session.get_connection("acme")
        assert again is not None and again.status is ConnectionStatus.CONNECTED
        assert again.tokens_encrypted is not None
        assert TokenCipher(key).decrypt(again.tokens_encrypted).access_token != first.access_token
    finally:
        store.dispose()


def test_connect_without_a_secret_key_says_how_to_make_one(qbo: EmulatorHandle, tmp_path: Path):
    args = ["connect", "--environment", qbo.base_url, "--client-id", qbo.client_id]
    args += ["--client-secret", qbo.client_secret, "--state-store", f"sqlite:///{tmp_path / 's.db'}"]
    result = CliRunner().invoke(cli(), args, env={"LEDGERSYNC_SECRET_KEY": ""})
    assert result.exit_code == 2
    assert "LEDGERSYNC_SECRET_KEY" in result.output and "generate_key" in result.output
