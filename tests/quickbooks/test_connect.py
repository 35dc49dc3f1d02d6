"""`ledgersync connect` and `ledgersync status`, run as a user does, on a ledgersync.yaml, against the
emulator (which consents by itself)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import typer
from starlette.testclient import TestClient
from typer.testing import CliRunner

from connectors.quickbooks.crypto import TokenCipher, generate_key
from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.emulator.server import EmulatorHandle
from engine.accounts import add_user
from engine.settings import load_config
from engine.state import ConnectionStatus, Role
from engine.store import SqlStateStore
from ledgersync.bootstrap import SECTIONS, Runtime
from ledgersync.cli import connect_cmd
from ledgersync.cli.context import config_option
from tests.web.conftest import sign_in


def cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(config_option)
    connect_cmd.register(app)
    return app


def config_file(tmp_path: Path, qbo: EmulatorHandle, quickbooks: str = "", web: str = "") -> Path:
    path = tmp_path / "ledgersync.yaml"
    path.write_text(
        "state_url: sqlite:///state.db\n"
        "connection: acme\n"
        "secret_key: {env: LEDGERSYNC_SECRET_KEY}\n"
        "quickbooks:\n"
        f"  environment: {qbo.base_url}\n"
        f"  client_id: {qbo.client_id}\n"
        "  client_secret: {env: QBO_CLIENT_SECRET}\n" + quickbooks + web
    )
    return path


def test_connect_then_status_then_reconnect_after_a_disconnect(qbo: EmulatorHandle, tmp_path: Path):
    key = generate_key()
    config = config_file(tmp_path, qbo)
    env = {"LEDGERSYNC_SECRET_KEY": key, "QBO_CLIENT_SECRET": qbo.client_secret}
    runner = CliRunner()
    result = runner.invoke(cli(), ["--config", str(config), "connect"], env=env)
    assert result.exit_code == 0, result.output
    assert "state=" in result.output and f"company {qbo.realm_id}" in result.output
    assert qbo.client_secret not in result.output

    result = runner.invoke(cli(), ["--config", str(config), "status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["id"] == "acme" and row["status"] == "connected" and row["realm_id"] == qbo.realm_id
    assert row["warning"] is None and row["metered_reads"] is None
    assert row["ops"] == {} and row["open_conflicts"] == 0 and row["parked"] == []

    store = SqlStateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.session() as session:
            stored = session.get_connection("acme")
            assert stored is not None and stored.tokens_encrypted is not None
            session.save_connection(stored.model_copy(update={"status": ConnectionStatus.NEEDS_REAUTH}))
        first = TokenCipher(key).decrypt(stored.tokens_encrypted)

        result = runner.invoke(cli(), ["--config", str(config), "status"], env=env)
        assert result.exit_code == 3 and "ledgersync connect" in result.output

        result = runner.invoke(cli(), ["--config", str(config), "connect"], env=env)
        assert result.exit_code == 0, result.output
        with store.session() as session:
            again = session.get_connection("acme")
        assert again is not None and again.status is ConnectionStatus.CONNECTED
        assert again.tokens_encrypted is not None
        assert TokenCipher(key).decrypt(again.tokens_encrypted).access_token != first.access_token
    finally:
        store.dispose()


def test_connect_without_a_secret_key_says_how_to_make_one(qbo: EmulatorHandle, tmp_path: Path):
    config = config_file(tmp_path, qbo)
    config.write_text(config.read_text().replace("secret_key: {env: LEDGERSYNC_SECRET_KEY}\n", ""))
    result = CliRunner().invoke(
        cli(), ["--config", str(config), "connect"], env={"QBO_CLIENT_SECRET": qbo.client_secret}
    )
    assert result.exit_code == 2
    assert "LEDGERSYNC_SECRET_KEY" in result.output and "generate_key" in result.output


def test_a_missing_client_secret_names_the_key_and_the_variable(qbo: EmulatorHandle, tmp_path: Path):
    result = CliRunner().invoke(cli(), ["--config", str(config_file(tmp_path, qbo)), "connect"], env={})
    assert result.exit_code == 2
    assert "quickbooks.client_secret: expected the environment variable QBO_CLIENT_SECRET" in result.output


def test_status_shows_dead_lettered_messages_with_a_redis_broker(qbo: EmulatorHandle, tmp_path: Path):
    import redis

    from engine.broker import NAMESPACE, QUEUE

    db = 9  # a database of this test's own
    client = redis.Redis(host="127.0.0.1", port=6379, db=db)
    client.flushdb()
    client.zadd(f"{NAMESPACE}:{QUEUE}.XQ", {"message-that-kept-failing": 1.0})
    config = config_file(tmp_path, qbo)
    config.write_text(config.read_text() + f"broker_url: redis://127.0.0.1:6379/{db}\n")
    env = {"LEDGERSYNC_SECRET_KEY": generate_key(), "QBO_CLIENT_SECRET": qbo.client_secret}
    try:
        assert CliRunner().invoke(cli(), ["--config", str(config), "connect"], env=env).exit_code == 0
        result = CliRunner().invoke(cli(), ["--config", str(config), "status", "--json"], env=env)
        (row,) = json.loads(result.output)
        assert row["dead_letters"] == 1
        result = CliRunner().invoke(cli(), ["--config", str(config), "status"], env=env)
        assert "1 message(s) in the dead-letter queue" in result.output
    finally:
        client.flushdb()
        client.close()


@pytest.mark.parametrize(
    ("quickbooks", "web", "callback"),
    [
        ("", "", "http://localhost:8000/callback"),
        ("", "web:\n  port: 8123\n", "http://localhost:8123/callback"),
        ("", "web:\n  host: sync.internal\n  port: 9000\n", "http://sync.internal:9000/callback"),
        (
            "",
            "web:\n  port: 8123\n  public_url: https://sync.example.com/\n",
            "https://sync.example.com/callback",
        ),
        (
            "  redirect_uri: https://proxy.example.com/qbo/callback\n",
            "web:\n  public_url: https://sync.example.com\n",
            "https://proxy.example.com/qbo/callback",
        ),
    ],
)
def test_connect_sends_the_web_apps_own_callback_as_the_redirect_uri(
    tmp_path: Path, quickbooks: str, web: str, callback: str
):
    # Like Intuit, the emulator refuses a redirect URI that is not registered for the app.
    with running_emulator(EmulatorConfig(redirect_uri_allowlist=(callback,))) as qbo:
        config = config_file(tmp_path, qbo, quickbooks, web)
        env = {"LEDGERSYNC_SECRET_KEY": generate_key(), "QBO_CLIENT_SECRET": qbo.client_secret}
        result = CliRunner().invoke(cli(), ["--config", str(config), "connect"], env=env)
    assert result.exit_code == 0, result.output
    consent = next(line for line in result.output.splitlines() if line.startswith(qbo.base_url))
    assert parse_qs(urlsplit(consent).query)["redirect_uri"] == [callback]


def test_the_web_connect_uses_the_same_redirect_uri_and_survives_a_restart_before_the_callback(
    tmp_path: Path,
):
    callback = "https://sync.example.com/callback"
    with running_emulator(EmulatorConfig(redirect_uri_allowlist=(callback,))) as qbo:
        config = config_file(tmp_path, qbo, web="web:\n  public_url: https://sync.example.com\n")
        env = {"LEDGERSYNC_SECRET_KEY": generate_key(), "QBO_CLIENT_SECRET": qbo.client_secret}
        first, second = (Runtime(load_config(config, env, SECTIONS)) for _ in range(2))
        try:
            with first.store.session() as s:
                add_user(s, "olga", Role.ADMIN, "an admin's long password", datetime.now(UTC))
            with TestClient(first.web_app(), base_url="https://sync.example.com") as browser:
                sign_in(browser, "olga", "an admin's long password")  # reconnecting takes an admin
                start = browser.get("/connect", follow_redirects=False)
                assert start.status_code == 302
                consent = start.headers["location"]
                assert parse_qs(urlsplit(consent).query)["redirect_uri"] == [callback]
                # The user approves at Intuit (the emulator consents at once) and is sent back.
                back = httpx.get(consent, follow_redirects=False).headers["location"]
                assert back.startswith(callback + "?")
                cookies = dict(browser.cookies)
            # The web app restarted meanwhile (or another replica answers): the state cookie still holds.
            with TestClient(
                second.web_app(), base_url="https://sync.example.com", cookies=cookies
            ) as browser:
                done = browser.get(back)
            assert done.status_code == 200, done.text
            assert f"Connected to QuickBooks company {qbo.realm_id}" in done.text
        finally:
            first.close()
            second.close()


def test_the_web_connect_of_a_tenant_stores_its_own_connection_and_touches_no_other(tmp_path: Path):
    callback = "https://sync.example.com/callback"
    with running_emulator(EmulatorConfig(redirect_uri_allowlist=(callback,))) as qbo:
        config = config_file(tmp_path, qbo, web="web:\n  public_url: https://sync.example.com\n")
        env = {"LEDGERSYNC_SECRET_KEY": generate_key(), "QBO_CLIENT_SECRET": qbo.client_secret}
        runtime = Runtime(load_config(config, env, SECTIONS))
        try:
            with runtime.store.session() as s:
                add_user(s, "olga", Role.ADMIN, "an admin's long password", datetime.now(UTC))
            with TestClient(runtime.web_app(), base_url="https://sync.example.com") as browser:
                sign_in(browser, "olga", "an admin's long password")  # connecting takes an admin
                assert browser.get("/connect?tenant=../x", follow_redirects=False).status_code == 400
                start = browser.get("/connect?tenant=acme", follow_redirects=False)
                back = httpx.get(start.headers["location"], follow_redirects=False).headers["location"]
                done = browser.get(back)
            assert done.status_code == 200, done.text
            with runtime.store.session() as s:
                (stored,) = s.list_connections()
            assert (stored.id, stored.app_tenant, stored.realm_id) == ("tenant-acme", "acme", qbo.realm_id)
        finally:
            runtime.close()
