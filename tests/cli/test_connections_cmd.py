"""connect --tenant, connections list, disconnect and status with several connections, on a
ledgersync.yaml wired to the emulator (the sandbox of `ledgersync demo`) and to a second emulator
for a tenant whose `quickbooks:` overrides name it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator
from ledgersync.cli import _register, app
from ledgersync.demo import Sandbox, sandbox
from tests.support.tenants import scope_sandbox

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


@pytest.fixture
def second() -> Iterator[EmulatorHandle]:
    with running_emulator(EmulatorConfig(realm_id="4620816365000000002")) as qbo:
        yield qbo


@pytest.fixture
def box(tmp_path: Path, second: EmulatorHandle) -> Iterator[Sandbox]:
    with sandbox(tmp_path) as ready:
        scope_sandbox(ready, tmp_path)
        text = ready.config_path.read_text(encoding="utf-8")
        text += f"tenants:\n  beta:\n    quickbooks:\n      environment: {second.base_url}\n"
        ready.config_path.write_text(text, encoding="utf-8")
        yield ready


def cli(box: Sandbox, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(box.config_path), *args], env=box.environ)
    return result.exit_code, result.output


def listed(box: Sandbox) -> dict[str, dict[str, object]]:
    code, output = cli(box, "connections", "list", "--json")
    assert code == 0, output
    return {row["id"]: row for row in json.loads(output)}


def test_each_tenant_connects_its_own_company_and_disconnecting_one_leaves_the_other(
    box: Sandbox, second: EmulatorHandle
) -> None:
    code, output = cli(box, "connect", "--tenant", "acme")
    assert code == 0 and "Connected tenant-acme for tenant acme" in output, output
    code, output = cli(box, "connect", "--tenant", "beta")
    assert code == 0 and second.realm_id in output, output
    rows = listed(box)
    assert {k: (r["tenant"], r["realm_id"], r["status"]) for k, r in rows.items()} == {
        "tenant-acme": ("acme", box.qbo.realm_id, "connected"),
        "tenant-beta": ("beta", second.realm_id, "connected"),
    }
    code, output = cli(box, "disconnect", "--tenant", "acme")
    assert code == 0 and "Disconnected tenant-acme" in output, output
    rows = listed(box)
    assert rows["tenant-acme"]["status"] == "revoked" and rows["tenant-beta"]["status"] == "connected"
    code, output = cli(box, "status", "--json")
    assert code == 3  # one connection needs a person
    status = {row["id"]: row for row in json.loads(output)}
    assert status["tenant-beta"]["tenant"] == "beta" and status["tenant-acme"]["status"] == "revoked"
    # Syncing goes on for the one still connected; the revoked one says what to do.
    code, output = cli(box, "sync", "--tenant", "beta", "--json")
    assert code == 0, output
    code, output = cli(box, "connect", "--connection", "tenant-acme")  # reconnect, same company
    assert code == 0 and listed(box)["tenant-acme"]["status"] == "connected", output


def test_a_company_serves_one_tenant_only(box: Sandbox) -> None:
    assert cli(box, "connect", "--tenant", "acme")[0] == 0
    code, output = cli(box, "connect")  # the default tenant, to the same company
    assert code == 2 and "connected to tenant acme already" in output, output
    assert list(listed(box)) == ["tenant-acme"]


def test_a_bad_tenant_name_is_refused(box: Sandbox) -> None:
    code, output = cli(box, "connect", "--tenant", "no/slashes")
    assert code == 2 and "not a valid name" in output


def test_tenants_connect_companies_of_one_emulator_by_realm(tmp_path: Path) -> None:
    with sandbox(tmp_path, EmulatorConfig().with_companies(3)) as box:
        scope_sandbox(box, tmp_path)
        realms = [str(c["realm_id"]) for c in box.qbo.companies()][1:]
        for tenant, realm in zip(("acme", "globex"), realms, strict=True):
            code, output = cli(box, "connect", "--tenant", tenant, "--realm", realm)
            assert code == 0 and realm in output, output
        assert {k: r["realm_id"] for k, r in listed(box).items()} == {
            "tenant-acme": realms[0],
            "tenant-globex": realms[1],
        }
        code, output = cli(box, "connect", "--tenant", "initech", "--realm", realms[0])
        assert code == 2 and "connected to tenant acme already" in output, output


def test_a_tenant_is_refused_while_the_mapping_names_no_tenant_column(tmp_path: Path) -> None:
    with sandbox(tmp_path) as box:  # the example app: one business's books, no tenant column
        code, output = cli(box, "connect", "--tenant", "acme")
        assert code == 2 and "names no tenant_column" in output and "every tenant's records" in output
        assert listed(box) == {}
        assert cli(box, "connect")[0] == 0  # the default tenant is the whole app, as always
