"""The review console in a real browser (headless Chromium, Debian's, driven by Playwright): sign in,
review and resolve conflicts one by one and in bulk, retry parked work, reconnect a company, read a
record's history, sign out; and a page on another site cannot make the browser change anything.

Each page is saved as a 1280x800 screenshot in $LEDGERSYNC_SCREENSHOTS (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from connectors.oidc import OidcSettings
from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from engine.accounts import add_user
from engine.model import EntityType
from engine.plan import OpStatus
from engine.state import ConnectionStatus, Role
from engine.web.serve import free_port, serving
from ledgersync.bootstrap import QuickBooksSection
from tests.support.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeProvider
from tests.web.conftest import ADMIN, PASSWORD, REVIEWER, World
from tests.web.console_world import Parked, park_two_ops, quickbooks_id, several_conflicts

C = EntityType.CUSTOMER
#: Debian's chromium (.ci/run installs it); Playwright's own browser downloads are never used.
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
#: The company is in New York; its app and QuickBooks open records at these addresses.
WEB = {
    "time_zone": "America/New_York",
    "app_record_url": "https://app.example.com/{entity}s/{id}",
    "quickbooks_record_url": "https://qbo.example/app/{entity}?id={id}",
}


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    kept = os.environ.get("LEDGERSYNC_SCREENSHOTS")
    directory = Path(kept) if kept else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def snap(page: Page, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name}.png looks blank"


def sign_in(page: Page, base: str, login: str, password: str = PASSWORD) -> None:
    """By keyboard, as a person does: in the login box, Tab to the password, Enter."""
    page.goto(f"{base}/login")
    page.focus("#login")
    page.keyboard.type(login)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/conflicts$"))


def test_a_reviewer_signs_in_resolves_one_and_a_bulk_set_reads_the_history_and_signs_out(
    world: World, browser: Browser, shots: Path
):
    phones = several_conflicts(world)
    with serving(world.app(**WEB)) as base:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{base}/conflicts")  # no session yet: the sign-in page, which comes back here after
        page.wait_for_url(re.compile(r".*/login\?next=/conflicts$"))
        page.fill("#login", REVIEWER)
        page.fill("#password", "not the password")
        page.click("button:has-text('Sign in')")
        assert "Wrong login or password." in page.inner_text("[role=alert]")
        snap(page, shots, "01-login-refused")
        sign_in(page, base, REVIEWER)

        listing = page.inner_text("main")
        assert "6 conflicts waiting, on 5 records." in listing
        assert "Phone number" in listing and "Email" in listing and "Amount received" in listing
        assert "$125.00" in listing and "$1,130.00" in listing  # money with its currency
        assert "Nov 3, 2026" in listing and "Nov 4, 2026" in listing  # dates as people write them
        assert "Signed in as maria" in page.inner_text("header")
        snap(page, shots, "02-conflicts")

        # One conflict: open it, try a value the field cannot take, then keep QuickBooks' value.
        page.click("a:has-text('Review #1')")
        page.wait_for_url(f"{base}/conflicts/1")
        values = page.inner_text("table.values")
        assert "app@example.com" in values and "accounts@example.com" in values
        assert "first seen in the app" in page.inner_text("ol.timeline")
        # Times in the company's zone; the record opens in QuickBooks and in the app.
        assert "Nov 1, 2026, 7:00 PM EST" in page.inner_text("ol.timeline")
        assert (
            page.get_attribute("a:has-text('in QuickBooks')", "href")
            == "https://qbo.example/app/customer?id=1"
        )
        assert page.get_attribute("a:has-text('in the app')", "href") == "https://app.example.com/customers/1"
        snap(page, shots, "03-conflict")
        page.click('button:has-text("Keep QuickBooks\' value")')
        page.wait_for_selector("text=Resolved by")
        assert "Resolved by maria" in page.inner_text("main")
        snap(page, shots, "04-conflict-resolved")

        page.goto(f"{base}/conflicts?entity=payment&field=total")
        page.click("a:has-text('Review #')")
        page.fill("#typed", "eighty")
        page.click("button:has-text('Use this value')")
        assert "Amount received: Type an amount, such as 1250.00." in page.inner_text("[role=alert]")
        snap(page, shots, "05-conflict-typed-value-refused")
        page.fill("#typed", "1,127.50")
        page.click("button:has-text('Use this value')")
        page.wait_for_selector("text=Resolved by")
        assert "$1,127.50" in page.inner_text("main")

        # A bulk set: the phone conflicts, filtered, all picked, QuickBooks' value kept for all of them.
        page.goto(f"{base}/conflicts")
        page.select_option("#f-field", "phone")
        page.click("button:has-text('Apply filters')")
        page.wait_for_url(re.compile(r".*field=phone.*"))
        assert "3 shown by the filters" in page.inner_text("main")
        page.check("#select-all")
        assert page.inner_text("#selected-count") == "3 selected"
        snap(page, shots, "06-conflicts-bulk-selected")
        page.click('button:has-text("Keep QuickBooks\' value for the selected")')
        page.wait_for_selector("text=Resolved 3 conflicts.")
        assert "none match the filters" in page.inner_text("main")
        assert page.locator("#f-field option:checked").inner_text() == "Phone number"  # still the filter
        snap(page, shots, "07-conflicts-bulk-resolved")
        page.goto(f"{base}/conflicts")
        assert "1 conflict waiting, on 1 record." in page.inner_text("main")  # the payment's date

        # The record's history, in words, with who resolved it.
        page.goto(f"{base}/history")
        page.select_option("#h-entity", "customer")
        page.fill("#h-id", "1")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r".*/records/\w+$"))
        history = page.inner_text("ol.timeline")
        assert "conflict on Email opened" in history
        assert "conflict on Email resolved by maria: kept QuickBooks' value" in history
        assert history.count("conflict on Email opened") == 1
        snap(page, shots, "08-history")

        page.click("button:has-text('Sign out')")
        page.wait_for_url(re.compile(r".*/login\?out=1$"))
        assert "You are signed out." in page.inner_text("main")
        snap(page, shots, "09-signed-out")
        page.goto(f"{base}/conflicts/1")
        page.wait_for_url(re.compile(r".*/login\?next=/conflicts/1$"))

    assert {world.conflict(i)["resolved_by"] for i in (1, 2, 3, 4, 5)} == {REVIEWER}
    world.loop.runner.run_until_quiet()
    assert world.loop.app.get(C, "1")["email"] == "accounts@example.com"  # type: ignore[index]
    for app_id, phone in phones.items():
        assert world.loop.app.get(C, app_id)["phone"] == phone  # type: ignore[index]


def test_a_reviewer_retries_a_parked_change_and_skips_another(world: World, browser: Browser, shots: Path):
    parked: Parked = park_two_ops(world)
    with serving(world.app(**WEB)) as base:
        page = browser.new_page(viewport=VIEWPORT)
        sign_in(page, base, REVIEWER)
        page.click("nav >> text=Parked")
        cards = page.inner_text("main")
        assert cards.count("QuickBooks refused to update this customer") == 2
        assert "Customer Núñez & Sons Plumbing" in cards  # the record by its name
        assert "What to do:" in cards and "press Retry" in cards
        snap(page, shots, "10-parked")
        world.loop.quickbooks.reject_when(None)  # the accountant fixed what QuickBooks objected to
        page.click(f"button[aria-label='Retry customer {parked.retry_qbo_id}']")
        page.wait_for_selector("text=Sent again")
        page.click(f"button[aria-label='Skip customer {parked.skip_qbo_id}']")
        page.wait_for_selector("text=Skipped")
        assert "Nothing is parked." in page.inner_text("main")
        snap(page, shots, "11-parked-done")
    world.loop.runner.run_until_quiet()
    assert world.loop.quickbooks.get(C, parked.retry_qbo_id)["notes"] == parked.notes  # type: ignore[index]
    assert world.loop.quickbooks.get(C, parked.skip_qbo_id)["notes"] != parked.notes  # type: ignore[index]
    with world.loop.store.session() as s:
        assert not s.ops("default", [OpStatus.PARKED])


def test_an_admin_reconnects_a_disconnected_company_from_the_banner(
    world: World, browser: Browser, shots: Path
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_emulator(EmulatorConfig()) as qbo:
        world.quickbooks = QuickBooksSection(
            environment=qbo.base_url, client_id=qbo.client_id, client_secret=SecretStr(qbo.client_secret)
        )
        app = world.app(public_url=base, **WEB)
        runtime = world.runtimes[-1]
        oauth = runtime.oauth()
        tokens = oauth.exchange_code(oauth.consent_automatically(oauth.authorization_request()))
        runtime.custodian().connect("default", tokens)
        qbo.disconnect()  # the company's admin clicked Disconnect in QuickBooks
        assert runtime.custodian().refresh_due(within=timedelta(days=1)).needs_reauth == ("default",)
        with serving(app, port=port):
            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, base, ADMIN)
            for section in ("Conflicts", "Parked", "History", "Connections"):
                page.click(f"nav >> text={section}")
                assert "must be reconnected" in page.inner_text("[role=alert]"), section
            assert "Needs reconnecting" in page.inner_text("main")
            snap(page, shots, "12-connections-disconnected")
            page.click("button:has-text('Reconnect to QuickBooks')")  # to QuickBooks, which consents
            page.wait_for_url(re.compile(r".*/callback\?.*"))
            assert f"Connected to QuickBooks company {qbo.realm_id}" in page.inner_text("body")
            page.click("text=Back to the connections")
            page.wait_for_url(f"{base}/connections")
            assert page.locator("[role=alert]").count() == 0
            assert "Connected" in page.inner_text("main") and "Last read from" in page.inner_text("main")
            snap(page, shots, "13-connections-reconnected")
    with world.loop.store.session() as s:
        stored = s.get_connection("default")
    assert stored is not None and stored.status is ConnectionStatus.CONNECTED


def test_an_admin_reconnects_a_tenants_company_picking_it_at_consent(
    world: World, browser: Browser, shots: Path
):
    """Many companies: each card names its app tenant, and its button is /connect?tenant=T; the user
    picks the company on the consent page (the emulator's picker, as Intuit's)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_emulator(EmulatorConfig(company_picker=True).with_companies(2)) as qbo:
        second = qbo.company_handle(str(qbo.companies()[1]["realm_id"]))
        world.quickbooks = QuickBooksSection(
            environment=qbo.base_url, client_id=qbo.client_id, client_secret=SecretStr(qbo.client_secret)
        )
        app = world.app(public_url=base, **WEB)
        runtime = world.runtimes[-1]
        oauth = runtime.oauth(tenant="acme")
        tokens = oauth.exchange_code(
            oauth.consent_automatically(oauth.authorization_request(realm=second.realm_id))
        )
        runtime.custodian(tenant="acme").connect("tenant-acme", tokens, app_tenant="acme")
        second.disconnect()
        assert runtime.custodian(tenant="acme").refresh_due(within=timedelta(days=1)).needs_reauth == (
            "tenant-acme",
        )
        with serving(app, port=port):
            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, base, ADMIN)
            page.click("nav >> text=Connections")
            card = page.locator("section", has_text="Connection tenant-acme")
            assert "Tenant acme" in card.inner_text() and "App tenant\tacme" in card.inner_text()
            snap(page, shots, "14-connections-tenant-disconnected")
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            card.locator("button:has-text('Reconnect to QuickBooks')").click()
            page.wait_for_url(re.compile(r".*/connect/oauth2\?.*"))  # QuickBooks asks which company
            assert f"{base}/connect?tenant=acme" in asked
            snap(page, shots, "15-consent-picks-the-company")
            page.click(f"a:has-text('{second.realm_id}')")
            page.wait_for_url(re.compile(r".*/callback\?.*"))
            assert f"Connected to QuickBooks company {second.realm_id}" in page.inner_text("body")
            page.click("text=Back to the connections")
            page.wait_for_url(f"{base}/connections")
            card = page.locator("section", has_text="Connection tenant-acme")
            assert "needs reconnecting" not in card.inner_text()
            snap(page, shots, "16-connections-tenant-reconnected")
    with world.loop.store.session() as s:
        stored = s.get_connection("tenant-acme")
    assert stored is not None and stored.status is ConnectionStatus.CONNECTED
    assert stored.app_tenant == "acme" and stored.realm_id == second.realm_id


def test_a_page_on_another_site_cannot_make_a_signed_in_browser_resolve(world: World, browser: Browser):
    with serving(world.app(**WEB)) as base:
        page = browser.new_page(viewport=VIEWPORT)
        sign_in(page, base, REVIEWER)
        target = f"{base}/conflicts/1/resolve"
        attack = (
            f"<form method=post action='{target}'><input name=take value=app>"
            "<input name=token value=forged></form><script>document.forms[0].submit()</script>"
        )
        evil = Starlette(routes=[Route("/", lambda _: HTMLResponse(attack))])
        # Another port of the same host (same site: the session cookie rides along) and another host
        # (another site: it does not): both are refused, and the conflict stays open.
        with serving(evil) as same_site, serving(evil, host="127.0.0.1") as other:
            for origin in (same_site, other.replace("127.0.0.1", "localhost")):
                with page.expect_response(target) as answer:
                    page.goto(origin + "/")
                assert answer.value.status in (401, 403), origin
    assert world.conflict()["status"] == "open"


def test_the_console_without_a_session_shows_only_the_sign_in_page(world: World, browser: Browser):
    with serving(world.app(**WEB)) as base:
        page = browser.new_page(viewport=VIEWPORT)
        for path in ("/conflicts", "/conflicts/1", "/parked", "/connections", "/history", "/"):
            page.goto(base + path)
            assert page.url.startswith(f"{base}/login"), path
            assert "accounts@example.com" not in page.content()
        answer = page.goto(f"{base}/api/conflicts")
        assert answer is not None and answer.status == 401
        assert "accounts@example.com" not in page.content()


def test_the_screenshots_are_taken_at_a_laptops_size(world: World, browser: Browser, shots: Path):
    with serving(world.app(**WEB)) as base:
        page = browser.new_page(viewport=VIEWPORT)
        sign_in(page, base, REVIEWER)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORT["width"], "the conflict list scrolls sideways on a laptop"
        assert quickbooks_id(world, C, "1") is not None


def test_a_reviewer_signs_in_with_the_company_account(world: World, browser: Browser, shots: Path):
    provider = FakeProvider()
    with serving(provider.app()) as issuer:
        provider.issuer = issuer
        world.sections["oidc"] = OidcSettings(
            issuer=issuer, client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET), label="Acme SSO"
        )
        with world.loop.store.session() as s:
            add_user(
                s, provider.email, Role.REVIEWER, "an unused long password", world.loop.runner.clock.now()
            )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with serving(world.app(public_url=base, **WEB), port=port):
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{base}/conflicts")
            snap(page, shots, "00-login")
            page.click("text=Sign in with Acme SSO")  # to the provider, which consents, and back
            page.wait_for_url(f"{base}/conflicts")
            assert f"Signed in as {provider.email}" in page.inner_text("header")
