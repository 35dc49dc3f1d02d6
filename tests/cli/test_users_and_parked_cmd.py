"""`ledgersync users` (the console's logins, the first one an admin) and `ledgersync parked` (why, retry,
skip), run as an operator does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.accounts import sign_in
from engine.clock import FakeClock
from engine.model import EntityType, Side
from engine.plan import OpStatus
from engine.state import ParkedRecord, Role, User
from engine.store import open_store
from ledgersync.cli import _register, app
from policies import PolicySet
from tests.support.loop import InProcess, in_process
from tests.support.sample import CUSTOMERS

C = EntityType.CUSTOMER
runner = CliRunner()
PASSWORD = "a long enough password"


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    if not app.registered_groups:
        _register()


def cli(config: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args], input=stdin)
    return result.exit_code, result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ledgersync.yaml"
    path.write_text(f"state_url: sqlite:///{tmp_path / 'state.db'}\n")
    return path


def user(config: Path, login: str) -> User | None:
    store = open_store(f"sqlite:///{config.parent / 'state.db'}")
    try:
        with store.session() as s:
            return s.get_user(login)
    finally:
        store.dispose()


def test_the_first_login_is_an_admin_the_next_a_reviewer_and_passwords_are_asked_twice(config: Path):
    code, output = cli(config, "users", "add", "olga", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert code == 0 and "added olga as admin (the first login, so an admin)" in output
    assert PASSWORD not in output.replace("Password", "")
    code, output = cli(config, "users", "add", "maria", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert code == 0 and "added maria as reviewer" in output
    olga, maria = user(config, "olga"), user(config, "maria")
    assert olga is not None and olga.role is Role.ADMIN and maria is not None and maria.role is Role.REVIEWER
    code, output = cli(config, "users", "list", "--json")
    assert code == 0 and [(u["login"], u["role"], u["locked"]) for u in json.loads(output)] == [
        ("maria", "reviewer", False),
        ("olga", "admin", False),
    ]


def test_a_single_sign_on_login_needs_no_password_and_has_none_anyone_knows(config: Path):
    code, output = cli(config, "users", "add", "Maria@Example.com", "--sso")
    assert code == 0 and "added maria@example.com as admin" in output and "Password" not in output
    stored = user(config, "maria@example.com")
    assert stored is not None and stored.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (["users", "add", "bob", "--password-stdin"], "short\n", "at least 10 characters"),
        (["users", "add", "bad name", "--password-stdin"], f"{PASSWORD}\n", "not a usable login"),
        (["users", "add", "olga", "--password-stdin"], f"{PASSWORD}\n", "exists already"),
        (["users", "unlock", "nobody"], None, "no user 'nobody'"),
    ],
)
def test_bad_user_commands_say_why(config: Path, args: list[str], stdin: str | None, says: str):
    assert cli(config, "users", "add", "olga", "--password-stdin", stdin=f"{PASSWORD}\n")[0] == 0
    code, output = cli(config, *args, stdin=stdin)
    assert code == 2 and says in output


def test_unlock_password_and_remove(config: Path):
    cli(config, "users", "add", "maria", "--role", "reviewer", "--password-stdin", stdin=f"{PASSWORD}\n")
    store = open_store(f"sqlite:///{config.parent / 'state.db'}")
    try:
        now = datetime.now(UTC)
        with store.session() as s:
            for _ in range(5):
                sign_in(s, "maria", "wrong", now)
        assert json.loads(cli(config, "users", "list", "--json")[1])[0]["locked"] is True
        assert cli(config, "users", "unlock", "maria")[0] == 0
        assert (
            cli(config, "users", "password", "maria", "--password-stdin", stdin="another password 1\n")[0]
            == 0
        )
        with store.session() as s:
            assert isinstance(sign_in(s, "maria", "another password 1", now), User)
        assert cli(config, "users", "remove", "maria")[0] == 0
        assert cli(config, "users", "remove", "maria")[0] == 1
    finally:
        store.dispose()


@pytest.fixture
def parked_world(tmp_path: Path) -> Iterator[tuple[InProcess, Path]]:
    db = tmp_path / "state.db"
    loop = in_process(f"sqlite:///{db}", PolicySet.default(), FakeClock(datetime(2026, 11, 2, tzinfo=UTC)))
    app_id = loop.app.create(C, dict(CUSTOMERS[0]))
    loop.runner.run_until_quiet()
    loop.quickbooks.reject_when(lambda op: op.fields.get("notes") == "back door")
    loop.app.edit(C, app_id, notes="back door")
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        s.park_record(
            ParkedRecord(
                connection="default",
                side=Side.QUICKBOOKS,
                entity=EntityType.INVOICE,
                external_id="88",
                seq=1,
                reason="line 1 names item 404, which QuickBooks does not have",
                parked_at=datetime(2026, 11, 1, tzinfo=UTC),
                checked_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
    config = tmp_path / "ledgersync.yaml"
    config.write_text(f"state_url: sqlite:///{db}\n")
    yield loop, config
    loop.store.dispose()


def test_parked_lists_why_and_what_to_do_then_retries_and_skips(parked_world: tuple[InProcess, Path]):
    loop, config = parked_world
    code, output = cli(config, "parked", "list", "--json")
    assert code == 0
    items = {i["kind"]: i for i in json.loads(output)}
    assert items["op"]["why"].startswith("QuickBooks refused to update this customer")
    assert "press Retry" in items["op"]["what_to_do"] and items["op"]["label"] == "Amélie O'Brien"
    assert (
        items["record"]["id"] == "quickbooks:invoice:88"
        and "Fix the record in QuickBooks" in items["record"]["what_to_do"]
    )
    code, output = cli(config, "parked", "list")
    assert code == 0 and "why: QuickBooks refused" in output

    assert cli(config, "parked", "skip", "quickbooks:invoice:88")[0] == 0
    assert cli(config, "parked", "skip", "quickbooks:invoice:88")[0] == 1
    loop.quickbooks.reject_when(None)
    assert cli(config, "parked", "retry", items["op"]["id"], "--by", "ops")[0] == 0
    loop.runner.run_until_quiet()
    assert loop.quickbooks.get(C, "1")["notes"] == "back door"  # type: ignore[index]
    assert cli(config, "parked", "retry", items["op"]["id"])[0] == 2  # not parked any more
    assert cli(config, "parked", "list")[1].strip() == "Nothing is parked."
    with loop.store.session() as s:
        assert not s.ops("default", [OpStatus.PARKED])
