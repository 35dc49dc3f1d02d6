"""A synced world with one open conflict (a customer's email edited on both sides), and the web app on it
as `ledgersync run` builds it: from a configuration with a secret_key and an API token, with a reviewer
(maria) and an admin (olga) who can sign in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr
from starlette.testclient import TestClient

from engine.accounts import add_user
from engine.clock import FakeClock
from engine.model import EntityType, Side
from engine.settings import Config, Schedule, Settings, Web
from engine.state import Role
from ledgersync.bootstrap import QuickBooksSection, Runtime
from policies import PolicySet
from tests.support.loop import InProcess, in_process
from tests.support.sample import CUSTOMERS

C = EntityType.CUSTOMER
SECRET = "c2VjcmV0LWtleS1vZi10aGUtd2ViLXRlc3RzLTAxMjM="
API_TOKEN = "script-token-7f3a"
#: The logins every web test has: a reviewer and an admin.
REVIEWER, ADMIN, PASSWORD = "maria", "olga", "correct horse battery"


def sign_in(browser: TestClient, login: str = REVIEWER, password: str = PASSWORD) -> TestClient:
    """Sign in through the login form, as a person does (the form's CSRF token included)."""
    page = browser.get("/login")
    token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
    assert token is not None
    done = browser.post(
        "/login",
        data={"token": token.group(1), "login": login, "password": password, "next": "/conflicts"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return browser


@dataclass
class World:
    loop: InProcess
    state_url: str
    runtimes: list[Runtime]
    #: The `quickbooks:` section, for tests that connect (and reconnect) through the emulator.
    quickbooks: QuickBooksSection | None = None
    #: Other sections of the configuration (an `oidc:` one, say), by name.
    sections: dict[str, BaseModel] = field(default_factory=dict)

    #: The `schedule:` section (defaults when None).
    schedule: Schedule | None = None

    def config(self, secret: str | None = SECRET, **web: Any) -> Config:
        web.setdefault("api_token", SecretStr(API_TOKEN))
        settings = Settings(
            state_url=self.state_url,
            secret_key=None if secret is None else SecretStr(secret),
            web=Web(**web),
            schedule=self.schedule or Schedule(),
        )
        quickbooks = {"quickbooks": self.quickbooks} if self.quickbooks else {}
        return Config(settings, {**quickbooks, **self.sections})

    def app(self, secret: str | None = SECRET, **web: Any) -> Any:
        """The web app of one ledgersync process (a restart or another replica is another call)."""
        runtime = Runtime(self.config(secret, **web), clock=self.loop.runner.clock)
        self.runtimes.append(runtime)
        return runtime.web_app()

    def conflict(self, conflict_id: int = 1) -> dict[str, Any]:
        with self.loop.store.session() as s:
            found = s.get_conflict(conflict_id)
        assert found is not None
        return found.model_dump(mode="json")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock(datetime(2026, 11, 2, tzinfo=UTC))
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    loop = in_process(state_url, PolicySet.default(), clock)
    app_id = loop.app.create(C, dict(CUSTOMERS[0]))
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        link = s.find_link("default", C, Side.APP, app_id)
    assert link is not None and link.quickbooks_id is not None
    loop.app.edit(C, app_id, email="app@example.com")
    loop.quickbooks.edit(C, link.quickbooks_id, email="accounts@example.com")
    loop.runner.run_until_quiet()
    with loop.store.session() as s:
        add_user(s, REVIEWER, Role.REVIEWER, PASSWORD, clock.now())
        add_user(s, ADMIN, Role.ADMIN, PASSWORD, clock.now())
    built = World(loop, state_url, [])
    try:
        yield built
    finally:
        for runtime in built.runtimes:
            runtime.close()
        loop.store.dispose()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    """A browser signed in as the reviewer."""
    with TestClient(world.app()) as browser:
        yield sign_in(browser)
