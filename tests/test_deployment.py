"""docker-compose.yml and its config stay correct without Docker here: every service runs a command
ledgersync has, every variable the config needs is passed in, and the config file loads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from engine.settings import load_config
from ledgersync.bootstrap import SECTIONS
from ledgersync.cli import _register, app

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONFIG = ROOT / "examples" / "docker" / "ledgersync.yaml"


def commands() -> set[str]:
    if not app.registered_commands:
        _register()
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name for g in app.registered_groups if g.name}


def ledgersync_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in COMPOSE["services"].items() if s.get("image") == "ledgersync:latest"}


def test_every_ledgersync_service_runs_a_real_command():
    known = commands()
    services = ledgersync_services()
    assert {"web", "worker", "scheduler", "emulator"} <= set(services)
    for name, service in services.items():
        if service.get("entrypoint"):
            continue  # a one-shot helper (the example app's seed) with its own entrypoint
        assert service["command"][0] in known, (name, service["command"])


def test_postgres_redis_web_and_emulator_have_health_checks():
    for name in ("postgres", "redis", "web", "emulator"):
        assert "healthcheck" in COMPOSE["services"][name], name


def test_the_config_file_gets_every_variable_it_references_from_compose():
    wanted = set(re.findall(r"\{env: (\w+)[,}]", CONFIG.read_text()))  # with a default or without
    passed = set(ledgersync_services()["worker"]["environment"])
    assert wanted <= passed, wanted - passed


def test_the_config_file_loads_with_the_values_compose_passes():
    def expand(value: str) -> str:  # as compose does, with no variables set: defaults, else a value
        value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
        return re.sub(r"\$\{\w+(:\?[^}]*)?\}", "value", value)

    env = {key: expand(str(value)) for key, value in ledgersync_services()["worker"]["environment"].items()}
    env["LEDGERSYNC_SECRET_KEY"] = "a" * 43 + "="
    config = load_config(CONFIG, env, SECTIONS)
    assert config.settings.broker_url and config.sections["quickbooks"] and config.sections["app"]
