"""`ledgersync init` and `ledgersync app install-triggers`, run as a user runs them."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from connectors.app import SqlConnector, load_mapping
from engine.model import EntityType
from engine.settings import load_config
from examples.invoicing import MAPPING, create_example_db
from ledgersync.bootstrap import SECTIONS
from ledgersync.cli import app_cmd
from policies.loader import load_policy
from tests.contract.suite import read_all


def cli() -> typer.Typer:
    app = typer.Typer()
    app_cmd.register(app)
    return app


def test_init_writes_a_commented_config_a_policy_and_a_model_mapping(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["init", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = (tmp_path / "ledgersync.yaml").read_text(encoding="utf-8")
    assert config.startswith("#")
    assert yaml.safe_load(config)["app"]["mapping"] == "mapping.yaml"
    environ = {"APP_DATABASE_URL": "sqlite:///app.db", "LEDGERSYNC_SECRET_KEY": "k" * 44}
    loaded = load_config(tmp_path / "ledgersync.yaml", environ, SECTIONS)
    assert loaded.sections["app"].model_dump()["mapping"] == "mapping.yaml"
    load_policy(tmp_path / "policies.yaml")
    assert set(load_mapping(tmp_path / "mapping.yaml").entities) == set(EntityType)


def test_init_keeps_existing_files_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "ledgersync.yaml").write_text("state_url: sqlite:///mine.db\n", encoding="utf-8")
    result = CliRunner().invoke(cli(), ["init", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    assert (tmp_path / "ledgersync.yaml").read_text(encoding="utf-8") == "state_url: sqlite:///mine.db\n"


def test_init_proposes_a_mapping_that_starts_on_the_database_it_came_from(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    create_example_db(url)
    result = CliRunner().invoke(cli(), ["init", "--database-url", url, "--dir", str(tmp_path / "project")])
    assert result.exit_code == 0, result.output
    proposed = load_mapping(tmp_path / "project" / "mapping.yaml")
    customer = proposed.entities[EntityType.CUSTOMER]
    assert (customer.table, customer.primary_key, customer.version_column) == ("customers", "id", "version")
    assert customer.fields["given_name"] == "first_name"
    assert proposed.entities[EntityType.INVOICE].lines is not None
    with SqlConnector.open(tmp_path / "project" / "mapping.yaml", url) as connector:
        events, _ = read_all(connector, EntityType.CUSTOMER)
    assert len(events) == 3


def test_init_with_a_database_it_cannot_open_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli(), ["init", "--database-url", "nonsense://", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "error:" in result.output


def test_install_triggers_creates_the_outbox_and_reports_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    create_example_db(url)
    args = ["app", "install-triggers", "--database-url", url, "--mapping", str(MAPPING)]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 0, result.output
    assert "outbox 'ledgersync_changes'" in result.output
    assert CliRunner().invoke(cli(), args).exit_code == 0


def test_install_triggers_with_a_mapping_that_does_not_fit_exits_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(
        cli(), ["app", "install-triggers", "--database-url", url, "--mapping", str(MAPPING)]
    )
    assert result.exit_code == 2
    assert "entities.customer.table: table 'customers' not found" in result.output
