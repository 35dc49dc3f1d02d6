"""An app customer renamed to a DisplayName another QuickBooks record holds follows the duplicate_names
policy, as a create does: `suffix` gives both sides the suffixed name, `manual` (and `link`, which
cannot merge two records that are linked already) puts a conflict naming the holder in the queue,
which a typed name resolves. Never a parked raw 6240, never two sides that silently differ.

Driven as a user meets it: `ledgersync sync` and `ledgersync conflicts` on a ledgersync.yaml wired
to the emulator and the example app, the app edited as its users edit it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.quickbooks.emulator import EmulatorConfig
from examples.invoicing.actions import row
from examples.invoicing.edit import edit_record
from ledgersync.cli import _register, app
from ledgersync.demo import Sandbox, sandbox

runner = CliRunner()
RENAMED = 1  # the example app's first customer, "Amélie O'Brien"
TAKEN = "Harbor Supplies"


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


def cli(box: Sandbox, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(box.config_path), *args], env=box.environ)
    return result.exit_code, result.output


@pytest.fixture
def box(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    rule: str = request.param
    with sandbox(tmp_path) as ready:
        (tmp_path / "policy.yaml").write_text(
            f"version: 1\nentities:\n  customer:\n    duplicate_names: {rule}\n", encoding="utf-8"
        )
        with ready.config_path.open("a", encoding="utf-8") as config:
            config.write("policy: policy.yaml\n")
        assert cli(ready, "connect")[0] == 0
        code, output = cli(ready, "sync")
        assert code == 0, output
        yield ready


def holder_of_the_name(box: Sandbox, kind: str) -> dict[str, Any]:
    """Someone keys the name into QuickBooks first: a supplier (Vendor) or another customer."""
    created = box.qbo.create_record(kind, {"DisplayName": TAKEN, "CompanyName": "Harbor Supplies Inc"})
    code, output = cli(box, "sync")  # a customer comes over to the app; a vendor is not synced
    assert code == 0, output
    return created


def qbo_customer(box: Sandbox) -> dict[str, Any]:
    link = json.loads(cli(box, "history", f"customer:app:{RENAMED}", "--json")[1])
    qbo_id = next(e["external_id"] for e in link if e["side"] == "quickbooks" and e["external_id"])
    found: dict[str, Any] = box.qbo.read_record("Customer", qbo_id)
    return found


def review(box: Sandbox, conflict_id: int) -> tuple[str, dict[str, Any]]:
    """The conflict's review page (text) and JSON, as the web app serves them."""
    from starlette.testclient import TestClient

    from engine.accounts import add_user
    from engine.settings import load_config
    from engine.state import Role
    from ledgersync.bootstrap import SECTIONS, Runtime
    from tests.web.conftest import sign_in

    runtime = Runtime(load_config(box.config_path, box.environ, SECTIONS))
    try:
        with runtime.store.session() as s:
            add_user(s, "reviewer", Role.REVIEWER, "a long enough password", datetime.now(UTC))
        with TestClient(runtime.web_app()) as client:
            sign_in(client, "reviewer", "a long enough password")
            page = client.get(f"/conflicts/{conflict_id}")
            api = client.get(f"/api/conflicts/{conflict_id}")
    finally:
        runtime.close()
    assert page.status_code == 200 and api.status_code == 200
    found: dict[str, Any] = api.json()
    return page.text, found


def customer_writes(box: Sandbox) -> int:
    """Customer writes QuickBooks has received (accepted or refused)."""
    count: int = box.qbo.request_log()["by_endpoint"].get("POST customer", 0)
    return count


def app_customer(box: Sandbox) -> dict[str, Any]:
    found = row(box.app_url, "customers", RENAMED)
    assert found is not None
    return found


def open_conflicts(box: Sandbox) -> list[dict[str, Any]]:
    code, output = cli(box, "conflicts", "list", "--json")
    assert code == 0, output
    found: list[dict[str, Any]] = json.loads(output)
    return found


def parked_ops(box: Sandbox) -> list[dict[str, Any]]:
    code, output = cli(box, "status", "--json")
    assert code in (0, 4), output
    (status,) = json.loads(output)
    parked: list[dict[str, Any]] = status["parked"]
    return parked


@pytest.mark.parametrize("box", ["suffix"], indirect=True)
@pytest.mark.parametrize("kind", ["Vendor", "Customer"])
def test_suffix_gives_both_sides_the_suffixed_name(box: Sandbox, kind: str) -> None:
    holder_of_the_name(box, kind)
    edit_record(box.app_url, "customer", RENAMED, {"display_name": TAKEN, "phone": "555-777-0000"})
    code, output = cli(box, "sync")
    assert code == 0, output
    ours = qbo_customer(box)
    assert ours["DisplayName"] == f"{TAKEN} (2)"
    assert ours["PrimaryPhone"]["FreeFormNumber"] == "555-777-0000"
    assert app_customer(box)["display_name"] == f"{TAKEN} (2)"  # both sides equal, nothing silent
    assert open_conflicts(box) == [] and parked_ops(box) == []
    assert cli(box, "sync", "--json")[0] == 0  # and quiet: the suffixed name is not fought over
    assert app_customer(box)["display_name"] == f"{TAKEN} (2)"


@pytest.mark.parametrize("box", ["manual", "link"], indirect=True)
@pytest.mark.parametrize("kind", ["Vendor", "Customer"])
def test_manual_puts_a_conflict_naming_the_holder_and_a_typed_name_resolves_it(
    box: Sandbox, kind: str
) -> None:
    holder = holder_of_the_name(box, kind)
    before = qbo_customer(box)
    writes = customer_writes(box)
    edit_record(box.app_url, "customer", RENAMED, {"display_name": TAKEN, "phone": "555-777-0000"})
    code, output = cli(box, "sync")
    assert code == 0, output
    assert parked_ops(box) == []
    assert customer_writes(box) == writes + 2  # the refused one, then the phone alone
    (conflict,) = open_conflicts(box)
    assert conflict["field"] == "display_name" and conflict["entity"] == "customer"
    assert (conflict["base"], conflict["app"], conflict["quickbooks"]) == (
        before["DisplayName"],
        TAKEN,
        before["DisplayName"],
    )
    # The table a reviewer reads says who holds the name.
    code, table = cli(box, "conflicts", "list")
    assert code == 0 and f"{kind} {holder['Id']}" in table and TAKEN in table
    # So do the review page and its JSON.
    page, api = review(box, conflict["id"])
    assert f"{kind} {holder['Id']}" in page and f"{kind} {holder['Id']}" in api["reason"]
    # The rest of the edit went through; the name waits for the reviewer, unchanged in QuickBooks.
    ours = qbo_customer(box)
    assert ours["DisplayName"] == before["DisplayName"]
    assert ours["PrimaryPhone"]["FreeFormNumber"] == "555-777-0000"
    # The accountant edits the customer meanwhile: that syncs, and the refused name is not sent again
    # (it would only be refused again), nor is the conflict closed and opened anew.
    box.qbo.edit_record("Customer", ours["Id"], {"Notes": "called about the rename"})
    writes = customer_writes(box)
    assert cli(box, "sync")[0] == 0
    assert app_customer(box)["notes"] == "called about the rename"
    assert customer_writes(box) == writes
    assert [c["id"] for c in json.loads(cli(box, "conflicts", "list", "--all", "--json")[1])] == [
        conflict["id"]
    ]

    typed = "display_name=Amélie at Harbor"
    code, output = cli(box, "conflicts", "resolve", str(conflict["id"]), "--set", typed)
    assert code == 0, output
    code, output = cli(box, "sync")
    assert code == 0, output
    assert qbo_customer(box)["DisplayName"] == "Amélie at Harbor"
    assert app_customer(box)["display_name"] == "Amélie at Harbor"
    assert open_conflicts(box) == [] and parked_ops(box) == []


@pytest.fixture
def documented(tmp_path: Path) -> Iterator[Sandbox]:
    """QuickBooks' documented 6240, which names no Id: the holder is found by name."""
    with sandbox(tmp_path, EmulatorConfig(duplicate_name_detail="documented")) as ready:
        (tmp_path / "policy.yaml").write_text(
            "version: 1\nentities:\n  customer:\n    duplicate_names: manual\n", encoding="utf-8"
        )
        with ready.config_path.open("a", encoding="utf-8") as config:
            config.write("policy: policy.yaml\n")
        assert cli(ready, "connect")[0] == 0
        assert cli(ready, "sync")[0] == 0
        yield ready


def test_a_name_only_rename_is_counted_and_renaming_again_settles_it(documented: Sandbox) -> None:
    box = documented
    holder = holder_of_the_name(box, "Employee")
    edit_record(box.app_url, "customer", RENAMED, {"display_name": TAKEN.upper()})  # names are caseless
    code, output = cli(box, "sync", "--json")
    assert code == 0, output
    assert json.loads(output)["conflicts"] == 1  # the summary says a person is needed
    (conflict,) = open_conflicts(box)
    assert conflict["reason"].startswith(f"QuickBooks refused the name {TAKEN.upper()!r}: Employee ")
    assert f"Employee {holder['Id']} {TAKEN!r} already has it" in conflict["reason"]
    # The user picks another name in the app: it goes through and the conflict is settled by itself.
    edit_record(box.app_url, "customer", RENAMED, {"display_name": "Harbor Bakery"})
    code, output = cli(box, "sync")
    assert code == 0, output
    assert qbo_customer(box)["DisplayName"] == "Harbor Bakery"
    assert open_conflicts(box) == [] and parked_ops(box) == []
