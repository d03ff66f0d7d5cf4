"""The browser tests: the five services (tests/support/system.py) with an SMTP server of the
module's own, the built app served by the gateway itself, a person's account made by
campaign-api's own command (campaign_api.accounts), and Debian's Chromium driven by
Playwright. `deploy/browser.sh` installs and builds what is missing (Chromium, the app)."""

import secrets
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from campaign_api.accounts import add_account
from tests.support.stack import running_system

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "services" / "frontend" / "dist"
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Person:
    email: str
    password: str


@pytest.fixture(scope="session")
def built_app():
    """The app built from its sources, and Chromium installed (deploy/browser.sh: quick when both are)."""
    subprocess.run([str(ROOT / "deploy" / "browser.sh")], check=True)
    assert (DIST / "index.html").exists() and shutil.which(CHROMIUM)
    return DIST


@pytest.fixture(scope="module")
async def stack(postgres_url, kafka_bootstrap, tmp_path_factory, built_app):
    """(system, gateway, smtp, person): one running system per module, serving the built app,
    and the account of a person who signs in to it."""
    person = Person(f"admin.{uuid.uuid4().hex[:8]}@example.com", secrets.token_urlsafe(18))
    async with running_system(postgres_url, kafka_bootstrap, tmp_path_factory.mktemp("browser-logs"), tag="b",
                              FRONTEND_DIST=str(built_app)) as (running, gateway, smtp):
        await add_account(running.database_url, person.email, person.password)
        yield running, gateway, smtp, person


@pytest.fixture(scope="module")
async def browser(stack):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        await chromium.close()


async def _page(browser, stack, signed_in: bool):
    running, _, _, person = stack
    # bypass_csp: axe-core is injected as an inline script, which the app's CSP refuses.
    context = await browser.new_context(base_url=running.gateway, viewport={"width": 1280, "height": 900},
                                        accept_downloads=True, bypass_csp=True)
    context.set_default_timeout(15_000)
    if signed_in:  # the session cookie in the context, as the sign-in screen would leave it
        answer = await context.request.post("/api/session", data={"email": person.email, "password": person.password})
        assert answer.status == 200, await answer.text()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors


@pytest.fixture
async def page(browser, stack):
    """A page of a person signed in."""
    context, page, errors = await _page(browser, stack, signed_in=True)
    yield page
    await context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture
async def anonymous_page(browser, stack):
    """A page of someone not signed in."""
    context, page, errors = await _page(browser, stack, signed_in=False)
    yield page
    await context.close()
    assert not errors, f"the page threw: {errors}"
