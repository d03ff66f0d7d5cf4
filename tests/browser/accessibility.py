"""axe-core (from the app's own npm dependencies) injected into a screen: no serious or
critical violation; and a screenshot of the screen: into docs/screenshots with
UPDATE_SCREENSHOTS=1, otherwise into a temporary folder (so `make test` leaves the tree clean)."""

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "services" / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = (ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "campaigns-screenshots")


async def serious_violations(page) -> list[dict]:
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def check_screen(page, name: str) -> None:
    """Screenshot `name`.png, then fail on any serious or critical axe violation."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    violations = await serious_violations(page)
    assert not violations, f"{name}: axe finds " + "; ".join(
        f"{v['impact']} {v['id']} ({v['help']}) at {v['nodes'][:3]}" for v in violations)
