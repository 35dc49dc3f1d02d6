"""The review queue from the command line: list, show, resolve, history, with stable JSON and exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.clock import FakeClock
from engine.model import EntityType, Side
from ledgersync.cli import _register, app
from policies import PolicySet
from tests.support.loop import InProcess, in_process
from tests.support.sample import CUSTOMERS

C = EntityType.CUSTOMER
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[InProcess, Path]]:
    db = tmp_path / "state.db"
    loop = in_process(f"sqlite:///{db}", PolicySet.default(), FakeClock(datetime(2026, 11, 2, tzinfo=UTC)))
    app_id = loop.app.create(C, dict(CUSTOMERS[0]))
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        link = s.find_link("default", C, Side.APP, app_id)
    assert link is not None and link.quickbooks_id is not None
    loop.app.edit(C, app_id, phone="555-111-1111")
    loop.quickbooks.edit(C, link.quickbooks_id, phone="555-222-2222")
    loop.runner.run_until_quiet()
    config = tmp_path / "ledgersync.yaml"
    config.write_text(f"state_url: sqlite:///{db}\n")
    yield loop, config
    loop.store.dispose()


def cli(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_list_json_is_stable_and_complete(world: tuple[InProcess, Path]):
    _, config = world
    code, output = cli(config, "conflicts", "list", "--json")
    assert code == 0
    (item,) = json.loads(output)
    assert item["field"] == "phone" and item["app"] == "555-111-1111" and item["quickbooks"] == "555-222-2222"
    assert item["base"] == "(555) 010-2000" and item["app_id"] == "1" and item["status"] == "open"
    assert item["label"] == "Amélie O'Brien"
    assert set(item) >= {"id", "entity", "link_id", "quickbooks_id", "policy", "created_at"}


def test_show_puts_the_values_side_by_side(world: tuple[InProcess, Path]):
    _, config = world
    code, output = cli(config, "conflicts", "show", "1")
    assert code == 0 and "555-111-1111" in output and "555-222-2222" in output and "base" in output


def test_resolve_by_taking_quickbooks_then_the_next_sync_writes_the_app(world: tuple[InProcess, Path]):
    loop, config = world
    code, output = cli(config, "conflicts", "resolve", "1", "--take", "quickbooks", "--by", "maria")
    assert code == 0, output
    loop.runner.run_until_quiet()
    assert loop.app.get(C, "1")["phone"] == "555-222-2222"  # type: ignore[index]
    code, output = cli(config, "conflicts", "list", "--json")
    assert json.loads(output) == []


def test_resolve_with_a_typed_value(world: tuple[InProcess, Path]):
    loop, config = world
    code, _ = cli(config, "conflicts", "resolve", "1", "--set", "phone=555-333-3333")
    assert code == 0
    loop.runner.run_until_quiet()
    assert loop.app.get(C, "1")["phone"] == "555-333-3333"  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("conflicts", "show", "99"), 1, "no conflict 99"),
        (("conflicts", "resolve", "1"), 2, "exactly one of"),
        (("conflicts", "resolve", "1", "--take", "excel"), 2, "--take expects app or quickbooks"),
        (("conflicts", "resolve", "1", "--set", "email=x@y.z"), 2, "conflict is on field 'phone'"),
        (("history", "customer:nowhere:1"), 2, "ENTITY:SIDE:ID"),
        (("history", "customer:app:99"), 1, "no customer '99'"),
    ],
)
def test_bad_input_gets_a_clear_message_and_exit_code(world: tuple[InProcess, Path], args, code, message):  # type: ignore[no-untyped-def]
    _, config = world
    got, output = cli(config, *args)
    assert got == code and message in output


def test_history_shows_what_happened_to_the_record(world: tuple[InProcess, Path]):
    _, config = world
    code, output = cli(config, "history", "customer:app:1", "--json")
    actions = [e["action"] for e in json.loads(output)]
    assert code == 0 and {"captured", "decided", "written", "conflict"} <= set(actions)
    code, output = cli(config, "history", "customer:app:1")
    assert code == 0 and "first seen in the app" in output and "conflict on Phone number opened" in output
    assert "created in QuickBooks" in output and "echo" not in output and "op_id" not in output


def test_a_broken_config_file_is_reported_with_its_key(tmp_path: Path):
    bad = tmp_path / "ledgersync.yaml"
    bad.write_text("state_url: 5\nweb: {port: 0}\n")
    code, output = cli(bad, "conflicts", "list")
    assert code == 2 and "web.port" in output
