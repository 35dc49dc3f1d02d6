"""The review page in a real browser (headless Chromium): a reviewer opens the conflict and clicks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from engine.model import EntityType
from engine.web.serve import serving
from tests.web.conftest import World

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


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium (as .ci/run does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_a_reviewer_resolves_a_conflict_by_clicking(world: World, browser: Browser, tmp_path: Path):
    with serving(world.app()) as base:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(f"{base}/conflicts")
        page.click("a[href='/conflicts/1']")  # the conflict's number links to its page
        page.wait_for_url(f"{base}/conflicts/1")
        assert "accounts@example.com" in page.inner_text("table.values")
        page.fill("input[name=by]", "Maria")
        page.screenshot(path=str(tmp_path / "review.png"), full_page=True)
        page.click("text=Keep QuickBooks' value")
        page.wait_for_selector("text=Resolved by")
        page.screenshot(path=str(tmp_path / "resolved.png"), full_page=True)
        resolved = page.inner_text("body")
    assert "Resolved by Maria (web form, name not verified)" in resolved
    assert world.conflict()["resolution"] == "accounts@example.com"
    world.loop.runner.run_until_quiet()
    assert world.loop.app.get(EntityType.CUSTOMER, "1")["email"] == "accounts@example.com"  # type: ignore[index]
    assert (tmp_path / "resolved.png").stat().st_size > 10_000
