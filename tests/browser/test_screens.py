"""Every screen that needs no data of its own: reachable by its URL, in a settled state
(loading, empty, or not available), with no serious or critical axe violation."""

import re

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser.accessibility import check_screen
from tests.support.system import API_KEY

pytestmark = pytest.mark.e2e

SCREENS = [
    ("contacts-empty", "/#/contacts", "Contacts"),
    ("segments-empty", "/#/segments", "Segments"),
    ("flows-empty", "/#/flows", "Flows"),
    ("campaigns-empty", "/#/campaigns", "Campaigns"),
    ("segment-builder-new", "/#/segments/new", "New segment"),
    ("flow-editor-new", "/#/flows/new", "New flow"),
    ("campaign-wizard-new", "/#/campaigns/new", "New campaign"),
    ("contacts-import", "/#/contacts/import", "Import contacts"),
    ("status", "/#/status", "Status"),
    ("sign-in", "/#/sign-in", "Sign in"),
    ("not-found", "/#/nowhere", "Not found"),
]


async def settled(page) -> None:
    await expect(page.locator(".state.loading")).to_have_count(0)


@pytest.mark.parametrize(("name", "url", "title"), SCREENS, ids=[s[0] for s in SCREENS])
async def test_screen_is_reachable_by_url_and_accessible(page, name, url, title):
    await page.goto(url)
    await expect(page.get_by_role("heading", level=1)).to_have_text(title)
    await settled(page)
    await check_screen(page, name)


async def test_the_main_navigation_works_by_keyboard_with_a_visible_focus(page):
    await page.goto("/#/contacts")
    await settled(page)
    await page.keyboard.press("Tab")  # the skip link first
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(4):
        await page.keyboard.press("Tab")  # brand, Contacts, Segments, Flows
    await expect(page.get_by_role("link", name="Flows")).to_be_focused()
    outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused link shows no outline"
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"#/flows$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Flows")


async def test_status_page_shows_each_service_the_lag_and_the_rate(page):
    await page.goto("/#/status")
    await settled(page)
    for service in ("campaign-api", "segment-svc", "flow-engine", "scheduler", "mailer"):
        await expect(page.locator(f'[data-service="{service}"]')).to_be_visible()
    await expect(page.get_by_test_id("scheduler-lag")).to_be_visible()
    await expect(page.get_by_test_id("mailer-rate")).to_be_visible()
    await expect(page.locator('[data-service="mailer"] .badge')).to_have_text("ok")


async def test_the_gateway_serves_the_app_its_assets_cached_and_the_api_apart(stack):
    running, _, _, _ = stack
    async with aiohttp.ClientSession() as session:
        async with session.get(running.gateway + "/campaigns/some/deep/link") as answer:
            assert answer.status == 200 and answer.headers["Cache-Control"] == "no-cache"
            index = await answer.text()
            assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index)
        assert assets, index
        for asset in assets:
            async with session.get(running.gateway + asset) as answer:
                assert answer.status == 200 and "immutable" in answer.headers["Cache-Control"], asset
        async with session.get(running.gateway + "/api/nothing-here") as answer:
            assert answer.status == 401, "the API's paths stay the API's: closed without a key or session"
        async with session.get(running.gateway + "/api/nothing-here",
                               headers={"Authorization": f"Bearer {API_KEY}"}) as answer:
            assert (answer.status, answer.content_type) == (404, "application/problem+json")
            assert (await answer.json())["title"] == "Not Found", "what the app reads as a missing endpoint"
        async with session.get(running.gateway + "/healthz") as answer:
            assert answer.status == 200 and "status" in await answer.json()
