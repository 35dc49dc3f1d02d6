"""Opening a store: supported URLs only, and an unreachable database is a retriable error."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigurationError, RetriableError
from engine.store import DEFAULT_URL, SqlStateStore, StoreUnavailableError
from engine.store.engines import SQLITE_BUSY_TIMEOUT_MS
from engine.store.sql import make_engine

PRAGMAS = ("journal_mode", "foreign_keys", "busy_timeout")


def test_the_default_store_is_a_sqlite_file() -> None:
    assert DEFAULT_URL.startswith("sqlite:///")
    assert DEFAULT_URL.removeprefix("sqlite:///")


@pytest.mark.parametrize(
    ("url", "schema"),
    [
        ("mysql://root@localhost/ledgersync", None),
        ("sqlite:///state.db", "ls_abc"),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/test", "bad name; DROP"),
    ],
)
def test_unsupported_settings_are_configuration_errors(url: str, schema: str | None) -> None:
    with pytest.raises(ConfigurationError):
        SqlStateStore(url, schema=schema)


def test_an_unreachable_database_is_retriable() -> None:
    store = SqlStateStore("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(StoreUnavailableError) as raised, store.session() as s:
            s.list_connections()
    finally:
        store.dispose()
    assert isinstance(raised.value, RetriableError)


def test_the_password_stays_out_of_repr() -> None:
    store = SqlStateStore("postgresql+psycopg://ledger:s3cret@127.0.0.1:1/nowhere")
    try:
        assert "s3cret" not in repr(store)
        assert "***" in repr(store)
    finally:
        store.dispose()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as conn:
            pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in PRAGMAS}
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": SQLITE_BUSY_TIMEOUT_MS}
