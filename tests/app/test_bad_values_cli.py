"""As a user meets it: `ledgersync sync` and `ledgersync status --json` on an app of their own
(tests/app/shop.py) with one bad line amount and a customer without a name, against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.quickbooks.crypto import generate_key
from connectors.quickbooks.emulator import EmulatorConfig, EmulatorHandle, running_emulator
from ledgersync.cli import _register, app
from tests.app.shop import Shop, create_shop
from tests.support.stores import postgres_schema, postgres_url

CONFIG = """\
state_url: sqlite:///state.db
secret_key: {{env: LEDGERSYNC_SECRET_KEY}}
quickbooks:
  environment: {qbo}
  client_id: {client_id}
  client_secret: {{env: QBO_CLIENT_SECRET}}
  webhook_verifier_token: {{env: QBO_WEBHOOK_VERIFIER}}
  defaults:
    income_account: "1"
app:
  database_url: {app}
  mapping: {mapping}
{schema}"""


@dataclass(frozen=True)
class Box:
    shop: Shop
    qbo: EmulatorHandle
    config: Path
    environ: dict[str, str]

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["--config", str(self.config), *args], env=self.environ)
        return result.exit_code, result.output

    def in_quickbooks(self, entity: str) -> list[dict[str, Any]]:
        return [row.data for row in self.qbo.emulator.store.all(entity)]


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Box]:
    with postgres_schema() if request.param == "postgres" else _no_schema() as schema:
        url = postgres_url() if schema else f"sqlite:///{tmp_path / 'shop.db'}"
        shop = create_shop(url, schema, tmp_path)
        with running_emulator(EmulatorConfig()) as qbo:
            config = tmp_path / "ledgersync.yaml"
            config.write_text(
                CONFIG.format(
                    qbo=qbo.base_url,
                    client_id=qbo.client_id,
                    app=url,
                    mapping=shop.mapping,
                    schema=f"  schema_name: {schema}\n" if schema else "",
                ),
                encoding="utf-8",
            )
            environ = {
                "LEDGERSYNC_SECRET_KEY": generate_key(),
                "QBO_CLIENT_SECRET": qbo.client_secret,
                "QBO_WEBHOOK_VERIFIER": EmulatorConfig().verifier_token,
            }
            yield Box(shop, qbo, config, environ)


class _no_schema:  # noqa: N801 - a stand-in for postgres_schema() on SQLite
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def test_sync_parks_the_bad_rows_syncs_the_rest_and_status_says_what_to_fix(box: Box) -> None:
    shop = box.shop
    bad = "abc" if shop.dialect == "sqlite" else "NaN"
    shop.add_client("C-1", "Ada's Bakery")
    shop.add_client("C-2", "")  # no display name
    shop.add_product("P-1", "Widget")
    shop.add_bill(1, "C-1", [{"line_total": "5.00"}])
    shop.add_bill(2, "C-1", [{"line_total": "5.00"}, {"line_total": bad}], second=1)
    assert box.cli("connect")[0] == 0

    code, output = box.cli("sync", "--json")
    assert code == 4, output  # "the sync left records parked"
    summary = json.loads(output)
    assert summary["parked_records"] == 2
    assert [c["DisplayName"] for c in box.in_quickbooks("Customer")] == ["Ada's Bakery"]
    assert len(box.in_quickbooks("Item")) == 1
    assert [i["DocNumber"] for i in box.in_quickbooks("Invoice")] == ["B-1"]

    code, output = box.cli("status", "--json")
    assert code == 0, output
    (row,) = json.loads(output)
    found = {(p["entity"], p["external_id"]): p for p in row["parked_records"]}
    assert set(found) == {("customer", "C-2"), ("invoice", "2")}
    line = found[("invoice", "2")]
    quoted = repr(bad) if shop.dialect == "sqlite" else bad
    assert line["side"] == "app"
    assert line["error"].startswith(f"row 3 of bill_rows, column line_total: {quoted} is not a number")
    assert "fix the value named in the app" in line["action"]
    assert found[("customer", "C-2")]["error"] == (
        "row 'C-2' of clients, column label: '' is empty, but every customer needs a display name: fill it in"
    )
    code, text = box.cli("status")
    assert "parked app invoice 2 (not read): row 3 of bill_rows, column line_total" in text

    # The user fixes both rows in the app; the next sync brings them over and the entries go.
    shop.run("UPDATE bill_rows SET line_total = '7.50' WHERE row_id = 3")
    shop.touch("bills", "bill_no", 2, second=5)
    shop.touch("clients", "code", "C-2", second=5, label="Cleo's Cafe")
    code, output = box.cli("sync", "--json")
    assert code == 0, output
    assert json.loads(output)["parked_records"] == 0
    assert sorted(i["DocNumber"] for i in box.in_quickbooks("Invoice")) == ["B-1", "B-2"]
    assert sorted(c["DisplayName"] for c in box.in_quickbooks("Customer")) == ["Ada's Bakery", "Cleo's Cafe"]
    (row,) = json.loads(box.cli("status", "--json")[1])
    assert row["parked_records"] == []


def test_order_by_on_the_lines_key_stops_sync_at_start_naming_the_mapping_line(box: Box) -> None:
    text = box.shop.mapping.read_text(encoding="utf-8").replace("order_by: seq_no", "order_by: row_id")
    box.shop.mapping.write_text(text, encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "order_by: row_id" in t)
    assert box.cli("connect")[0] == 0
    code, output = box.cli("sync")
    assert code == 2, output
    assert f"{box.shop.mapping}:{line}:7: entities.invoice.lines.order_by: column 'row_id'" in output.replace(
        "\n", ""
    )
