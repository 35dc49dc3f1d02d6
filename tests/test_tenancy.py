"""Tenants in ledgersync.yaml: names and connection ids, each tenant's policy (read and checked at
start-up, a bad one named with its tenant) and its `quickbooks:` overrides (validated merged over the
file's section, a bad key named by its path under `tenants:`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.configfile import ConfigFileError
from engine.errors import ConfigurationError
from engine.model import EntityType
from engine.plan import Direction
from engine.settings import load_config
from engine.state import Connection
from ledgersync.bootstrap import SECTIONS, QuickBooksSection, Runtime
from ledgersync.tenancy import Tenancy

BASE = """\
state_url: sqlite:///state.db
quickbooks:
  environment: http://127.0.0.1:8700
  client_id: app
  client_secret: s
"""


def config(tmp_path: Path, tenants: str) -> Path:
    path = tmp_path / "ledgersync.yaml"
    path.write_text(BASE + tenants, encoding="utf-8")
    return path


def test_connection_ids_come_from_the_tenant_unless_configured(tmp_path: Path) -> None:
    loaded = load_config(config(tmp_path, "tenants:\n  acme: {connection: acme-books}\n"), {}, SECTIONS)
    tenancy = Tenancy.load(loaded)
    assert tenancy.connection_of("default") == "default"
    assert tenancy.connection_of("acme") == "acme-books" and tenancy.connection_of("zeta") == "tenant-zeta"
    assert tenancy.tenant_of("acme-books") == "acme" and tenancy.tenant_of("tenant-zeta") == "zeta"
    assert tenancy.tenant_of("default") == "default"
    stored = Connection(id="legacy", app_tenant="42")
    assert tenancy.tenant_of("legacy", stored) == "42"  # as stored, once connected
    with pytest.raises(ConfigurationError, match="not a valid name"):
        tenancy.connection_of("../etc")


def test_two_tenants_cannot_share_a_connection_id(tmp_path: Path) -> None:
    text = "tenants:\n  a: {connection: same}\n  b: {connection: same}\n"
    with pytest.raises(ConfigFileError, match="share the connection id 'same'"):
        load_config(config(tmp_path, text), {}, SECTIONS)


def test_a_tenants_quickbooks_overrides_are_merged_and_checked(tmp_path: Path) -> None:
    good = "tenants:\n  beta:\n    quickbooks: {environment: sandbox}\n"
    loaded = load_config(config(tmp_path, good), {}, SECTIONS)
    beta = loaded.tenant_sections["beta"]["quickbooks"]
    assert isinstance(beta, QuickBooksSection) and beta.environment == "sandbox" and beta.client_id == "app"
    bad = "tenants:\n  beta:\n    quickbooks: {environment: nowhere}\n"
    with pytest.raises(ConfigFileError, match=r"tenants\.beta\.quickbooks\.environment"):
        load_config(config(tmp_path, bad), {}, SECTIONS)


def test_each_tenant_gets_its_policy_and_a_bad_one_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(
        "version: 1\nentities:\n  customer:\n    direction: app_to_quickbooks\n", encoding="utf-8"
    )
    loaded = load_config(config(tmp_path, "tenants:\n  acme: {policy: acme.yaml}\n"), {}, SECTIONS)
    runtime = Runtime(loaded)
    try:
        acme = runtime.policy_for("tenant-acme")
        assert acme.direction(EntityType.CUSTOMER, "email") is Direction.APP_TO_QUICKBOOKS
        assert runtime.policy_for("tenant-other").direction(EntityType.CUSTOMER, "email") is Direction.BOTH
        assert runtime.policy_for("default") is runtime.policy
    finally:
        runtime.close()
    (tmp_path / "acme.yaml").write_text(
        "version: 1\nentities:\n  customer:\n    direction: sideways\n", encoding="utf-8"
    )
    with pytest.raises(ConfigurationError, match=r"tenants\.acme\.policy: .*acme\.yaml"):
        Runtime(load_config(config(tmp_path, "tenants:\n  acme: {policy: acme.yaml}\n"), {}, SECTIONS))
