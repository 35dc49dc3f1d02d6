"""`ledgersync policy check FILE`: the effective policy and exit 0, or every problem and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ledgersync.cli

REPO = Path(__file__).parents[2]
DEFAULT = REPO / "policies" / "default.yaml"
BAD = "version: 1\nentities:\n  customer:\n    conflict: app_win\n    fields:\n      emial: {}\n"


@pytest.fixture(scope="module")
def runner() -> Iterator[CliRunner]:
    # ledgersync.cli registers its command groups on first use; the app is a module global, so once only.
    if not ledgersync.cli.app.registered_groups:
        ledgersync.cli._register()
    yield CliRunner()


def test_check_prints_the_effective_policy(runner: CliRunner) -> None:
    result = runner.invoke(ledgersync.cli.app, ["policy", "check", str(DEFAULT)])
    assert result.exit_code == 0, result.output
    assert "valid policy (version 1)" in result.stdout
    for heading in (
        "customer: both",
        "item: app_to_quickbooks",
        "invoice: app_to_quickbooks",
        "payment: both",
    ):
        assert heading in result.stdout
    assert "match keys:      email, display_name" in result.stdout
    assert "duplicate names: suffix" in result.stdout
    assert "on delete:       in QuickBooks void, in the app ignore" in result.stdout
    assert "│ balance            │ quickbooks_to_app │ -" in result.stdout


def test_check_lists_every_problem_on_stderr_and_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = runner.invoke(ledgersync.cli.app, ["policy", "check", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}:4:5: entities.customer.conflict: expected one of app_wins, quickbooks_wins, newest_wins, "
        "manual; got 'app_win'",
        f"{path}:6:7: entities.customer.fields.emial: unknown customer field; expected one of display_name, "
        "given_name, family_name, company_name, email, phone, billing_address, notes, active, currency; "
        "got 'emial'",
    ]


def test_check_of_a_missing_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(ledgersync.cli.app, ["policy", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml: file not found" in result.stderr


def test_console_script_end_to_end(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "ledgersync"
    good = subprocess.run(
        [script, "policy", "check", "policies/default.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "policies/default.yaml: valid policy" in good.stdout
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(BAD)
    bad = subprocess.run([script, "policy", "check", bad_file], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "entities.customer.conflict: expected one of" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_check_json_prints_the_effective_policy_as_one_stable_object(runner: CliRunner) -> None:
    result = runner.invoke(ledgersync.cli.app, ["policy", "check", str(DEFAULT), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["valid"] is True and set(answer) == {"valid", "policy"}
    policy = answer["policy"]
    assert policy["version"] == 1 and set(policy["entities"]) == {"customer", "item", "invoice", "payment"}
    customer = policy["entities"]["customer"]
    assert set(customer) == {
        "direction",
        "conflict",
        "match_keys",
        "fill_empty_on_match",
        "duplicate_names",
        "on_delete",
        "fields",
    }
    assert customer["match_keys"] == ["email", "display_name"]
    assert customer["fields"]["email"]["conflict"] == "manual"


def test_check_json_lists_every_problem_and_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = runner.invoke(ledgersync.cli.app, ["policy", "check", str(path), "--json"])
    assert result.exit_code == 2
    answer = json.loads(result.stdout)
    assert answer["valid"] is False and answer["file"] == str(path)
    assert len(answer["problems"]) == 2
    assert any("entities.customer.conflict" in p and "app_win" in p for p in answer["problems"])
    assert any("emial" in p for p in answer["problems"])
