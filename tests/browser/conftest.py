"""The browser tests: the five services (tests/support/system.py) with an SMTP server of the
module's own, the built app in front of them (app_server.py), and Debian's Chromium driven by
Playwright. `deploy/browser.sh` installs and builds what is missing (Chromium, the app)."""

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from servicekit.topics import ensure_topics
from tests.browser.app_server import DIST, AppServer
from tests.support.servers import create_database, drop_database
from tests.support.smtp import SmtpServer
from tests.support.system import Gateway, System, stop

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def built_app():
    """The app built from its sources, and Chromium installed (deploy/browser.sh: quick when both are)."""
    subprocess.run([str(ROOT / "deploy" / "browser.sh")], check=True)
    assert (DIST / "index.html").exists() and shutil.which(CHROMIUM)
    return DIST


@pytest.fixture(scope="module")
async def stack(postgres_url, kafka_bootstrap, tmp_path_factory, built_app):
    """(system, gateway, smtp, app): one running system per module, the app in front of it."""
    database_url = await create_database(postgres_url)
    prefix = f"b{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    logs = tmp_path_factory.mktemp("browser-logs")
    with SmtpServer() as smtp:
        running = System(database_url, kafka_bootstrap, prefix, smtp.port, logs)
        try:
            await running.start_all()
            gateway = Gateway(running.gateway)
            app = await AppServer(running.gateway).start()
            try:
                yield running, gateway, smtp, app
            finally:
                await app.stop()
                await gateway.close()
        finally:
            await stop(running)
    await drop_database(postgres_url, database_url)


@pytest.fixture(scope="module")
async def browser(stack):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser, stack):
    _, _, _, app = stack
    context = await browser.new_context(base_url=app.url, viewport={"width": 1280, "height": 900},
                                        accept_downloads=True)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    await context.close()
    assert not errors, f"the page threw: {errors}"
