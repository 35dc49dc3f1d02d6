"""ledgersync.yaml: env references, section models, key paths in errors, paths next to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.quickbooks.settings import QboSettings
from engine.configfile import ConfigFileError
from engine.settings import load_config

SECTIONS = {"quickbooks": QboSettings}
GOOD = """\
state_url: sqlite:///state/ledgersync.db
broker_url: redis://127.0.0.1:6379/0
secret_key: {env: LEDGERSYNC_SECRET_KEY}
quickbooks:
  environment: http://127.0.0.1:8700
  client_id: {env: QBO_CLIENT_ID, default: emulator-client-id}
  client_secret: {env: QBO_CLIENT_SECRET}
schedule:
  app_poll_seconds: 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ledgersync.yaml"
    path.write_text(text)
    return path


def test_a_good_file_resolves_env_references_and_validates_sections(tmp_path: Path):
    environ = {"LEDGERSYNC_SECRET_KEY": "k" * 44, "QBO_CLIENT_SECRET": "sekrit-xyz"}
    config = load_config(write(tmp_path, GOOD), environ, SECTIONS)
    qbo = config.sections["quickbooks"]
    assert isinstance(qbo, QboSettings)
    assert qbo.client_id == "emulator-client-id" and qbo.client_secret.get_secret_value() == "sekrit-xyz"
    assert config.settings.secret_key is not None and config.settings.schedule.app_poll_seconds == 2
    assert config.settings.state_url == f"sqlite:///{tmp_path}/state/ledgersync.db"
    assert "sekrit-xyz" not in repr(config) and "k" * 44 not in repr(config)


def test_a_missing_environment_variable_names_the_key_and_the_variable(tmp_path: Path):
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(tmp_path, GOOD), {"QBO_CLIENT_SECRET": "s3"}, SECTIONS)
    assert (
        "ledgersync.yaml:3:1: secret_key: expected the environment variable LEDGERSYNC_SECRET_KEY to be set"
        in str(caught.value)
    )


def test_problems_in_sections_and_the_top_level_are_all_reported_with_positions(tmp_path: Path):
    text = GOOD.replace("client_secret: {env: QBO_CLIENT_SECRET}", "client_secrt: x") + "web: {port: many}\n"
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(tmp_path, text), {"LEDGERSYNC_SECRET_KEY": "k"}, SECTIONS)
    problems = caught.value.problems
    assert any(":7:3: quickbooks.client_secrt: unknown key" in p for p in problems)
    assert any("quickbooks.client_secret: required key is missing" in p for p in problems)
    assert any("web.port" in p for p in problems)


def test_no_file_at_the_default_path_means_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {}, SECTIONS)
    assert config.settings.state_url == "sqlite:///ledgersync.db" and config.sections == {}


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigFileError, match="file not found"):
        load_config(tmp_path / "nope.yaml", {}, SECTIONS)


def test_broken_yaml_gives_its_line(tmp_path: Path):
    with pytest.raises(ConfigFileError, match=r"ledgersync.yaml:\d+:\d+: invalid YAML"):
        load_config(write(tmp_path, "state_url: [\nweb: 1\n"), {}, SECTIONS)


def test_the_read_schedule_is_prompt_unless_frugal_is_chosen_and_explicit_seconds_win(tmp_path: Path):
    environ = {"LEDGERSYNC_SECRET_KEY": "k" * 44, "QBO_CLIENT_SECRET": "s"}

    def schedule(extra: str) -> tuple[str, float, float]:
        s = load_config(write(tmp_path, GOOD + extra), environ, SECTIONS).settings.schedule
        return s.quickbooks_reads, s.quickbooks_read_window_seconds, s.quickbooks_read_delay_seconds

    assert schedule("") == ("prompt", 2.0, 0.0)
    assert schedule("  quickbooks_reads: frugal\n") == ("frugal", 60.0, 60.0)
    assert schedule("  quickbooks_reads: frugal\n  quickbooks_read_delay_seconds: 45\n") == (
        "frugal",
        60.0,
        45.0,
    )
    assert schedule("  quickbooks_read_window_seconds: 5\n") == ("prompt", 5.0, 0.0)


def test_an_unknown_read_schedule_names_the_choices(tmp_path: Path):
    text = GOOD + "  quickbooks_reads: cheap\n"
    with pytest.raises(ConfigFileError) as caught:
        load_config(write(tmp_path, text), {"LEDGERSYNC_SECRET_KEY": "k", "QBO_CLIENT_SECRET": "s"}, SECTIONS)
    (problem,) = [p for p in caught.value.problems if "quickbooks_reads" in p]
    assert ":10:3: schedule.quickbooks_reads" in problem and "'prompt'" in problem and "'frugal'" in problem
