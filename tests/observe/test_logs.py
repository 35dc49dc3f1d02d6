"""Log output: `logging.format: json` turns a sync's log into JSON lines carrying the context the code
passes (connection, realm, entity, record, op id, intuit_tid); secrets and payloads never appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from engine.configfile import ConfigFileError
from engine.observe.logs import OMITTED, REDACTED, configure_logging
from engine.settings import LoggingSettings, load_config
from ledgersync.bootstrap import SECTIONS
from ledgersync.cli import _register, app
from ledgersync.demo import sandbox
from tests.support.tenants import scope_sandbox


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test leaves the process's logging as it found it (the CLI configures the root logger)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_json_log_of_a_sync_carries_each_record_s_context(tmp_path: Path):
    if not app.registered_groups:
        _register()
    runner = CliRunner()
    with sandbox(tmp_path) as box:
        with box.config_path.open("a", encoding="utf-8") as config:
            config.write("logging:\n  format: json\n  level: debug\n")
        base = ["--config", str(box.config_path)]
        assert runner.invoke(app, [*base, "connect"], env=box.environ).exit_code == 0
        assert runner.invoke(app, [*base, "sync"], env=box.environ).exit_code == 0
        # An accountant renames a customer in QuickBooks: the next sync writes it to the app.
        customer = box.qbo.list_records("Customer")[0]
        box.qbo.edit_record("Customer", customer["Id"], {"DisplayName": "Renamed in QuickBooks"})
        result = runner.invoke(app, [*base, "sync", "--json"], env=box.environ)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["applied"] == 1, "stdout stays the command's own output"
    lines = json_lines(result.stderr)
    assert lines and all({"asctime", "level", "logger", "message"} <= set(line) for line in lines)

    # Each QuickBooks call: its connection, company, entity, op id (writes) and QuickBooks' trace id.
    writes = [line for line in lines if line["logger"] == "connectors.quickbooks.client"]
    assert writes, [line["message"] for line in lines][:20]
    for write in writes:
        assert {"connection", "realm", "entity", "path", "op_id", "intuit_tid"} <= set(write)
        assert write["connection"] == "default" and write["realm"] == box.qbo.realm_id and write["intuit_tid"]
    # The synced entities (a CDC call names all it reads), and what the demo's `read_company` reads of
    # the company once.
    assert {e for w in writes if w["path"] != "/batch" for e in w["entity"].split(",")} <= {
        "Customer",
        "Item",
        "Invoice",
        "Payment",
        "Preferences",
        "TaxCode",
        "CompanyCurrency",
    }
    # A write to the app: the record written and its op id.
    applied = [line for line in lines if line["message"] == "app write applied"]
    (renamed,) = applied
    assert renamed["entity"] == "customer" and renamed["op_id"] and renamed["connection"] == "default"
    assert renamed["record"]

    for secret in box.environ.values():
        assert secret not in result.stderr
    assert "Bearer" not in result.stderr and "access_token" not in result.stderr


def test_secrets_are_redacted_and_payloads_left_out_whatever_the_format():
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="INFO"), stream)
    logging.getLogger("obs.test").info(
        "refreshed with Authorization: Bearer eyJhbGciOi.abc-def",
        extra={
            "connection": "c1",
            "intuit_tid": "1-abc",
            "access_token": "eyJ-secret-access",
            "refresh_token": "AB11-secret-refresh",
            "client_secret": SecretStr("shh"),
            "request": {"headers": {"Authorization": "Bearer inner-secret"}, "body": {"DisplayName": "x"}},
            "payload": {"Id": "1", "Balance": "10.00"},
        },
    )
    text = stream.getvalue()
    (line,) = json_lines(text)
    assert line["connection"] == "c1" and line["intuit_tid"] == "1-abc"
    assert line["access_token"] == line["refresh_token"] == line["client_secret"] == REDACTED
    assert line["request"] == {"headers": {"Authorization": REDACTED}, "body": OMITTED}
    assert line["payload"] == OMITTED
    assert line["message"] == f"refreshed with Authorization: Bearer {REDACTED}"
    for secret in ("eyJhbGciOi", "secret-access", "secret-refresh", "shh", "inner-secret", "Balance"):
        assert secret not in text

    plain = io.StringIO()
    configure_logging(LoggingSettings(), plain)
    log = logging.getLogger("obs.test")
    log.warning("token is Bearer abc123", extra={"access_token": "abc123"})
    log.warning("sent Basic dXNlcjpwYXNzd29yZA== to a basic check")
    assert plain.getvalue() == (
        f"  [WARNING obs.test] token is Bearer {REDACTED}\n"
        f"  [WARNING obs.test] sent Basic {REDACTED} to a basic check\n"
    )


def test_an_unknown_log_format_or_level_names_the_key(tmp_path: Path):
    path = tmp_path / "ledgersync.yaml"
    path.write_text("logging:\n  format: xml\n  level: loud\n")
    with pytest.raises(ConfigFileError) as raised:
        load_config(path, {}, SECTIONS)
    problems = "\n".join(raised.value.problems)
    assert "logging.format: expected 'plain' or 'json'" in problems
    assert "logging.level: expected 'DEBUG'" in problems


def test_a_tenants_log_lines_say_its_tenant_and_company(tmp_path: Path):
    if not app.registered_groups:
        _register()
    runner = CliRunner()
    with sandbox(tmp_path) as box:
        scope_sandbox(box, tmp_path)
        with box.config_path.open("a", encoding="utf-8") as config:
            config.write("logging:\n  format: json\n  level: debug\n")
        base = ["--config", str(box.config_path)]
        assert runner.invoke(app, [*base, "connect", "--tenant", "acme"], env=box.environ).exit_code == 0
        result = runner.invoke(app, [*base, "sync", "--tenant", "acme"], env=box.environ)
        realm = box.qbo.realm_id
    assert result.exit_code == 0, result.output
    about = [line for line in json_lines(result.stderr) if line.get("connection") == "tenant-acme"]
    assert about and all(line["tenant"] == "acme" and line["realm"] == realm for line in about)
    assert "connectors.quickbooks.client" in {line["logger"] for line in about}
