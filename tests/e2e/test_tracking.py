"""The links in emails, followed over HTTP: opens, clicks and unsubscribing, and what the
campaign's stats say about them."""

import html
import re
import uuid
from datetime import UTC, datetime

import aiohttp
import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

PERSON = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Mail"}
TEMPLATE = '<html><body><p>Hi {{ first_name }}</p><a href="https://shop.example/sale?a=1&amp;b=2">Sale</a></body></html>'


async def start(gateway, contacts: list[dict], steps: list[dict]) -> dict:
    segment = await gateway.segment_of(contacts)
    tag = segment["name"]
    flow = await gateway.ok("POST", "/api/flows", {"name": tag, "steps": steps}, expect=201)
    campaign = await gateway.ok("POST", "/api/campaigns", {
        "name": tag, "segment_id": segment["id"], "flow_id": flow["id"],
        "start_date": datetime.now(UTC).date().isoformat(), "start_time_of_day": "00:00"}, expect=201)
    await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})
    return campaign


async def completed(gateway, campaign: dict) -> dict:
    async def done():
        return (await gateway.ok("GET", f"/api/campaigns/{campaign['id']}"))["status"] == "completed"

    await eventually(done, "the campaign completes", timeout=90)
    return await gateway.ok("GET", f"/api/campaigns/{campaign['id']}/stats")


def email(subject: str = "Hello {{ first_name }}") -> dict:
    return {"type": "SEND_EMAIL", "config": {"subject": subject, "text": "Hi", "html": TEMPLATE}}


def links(mail) -> tuple[str, str]:
    body = mail.message.get_body(("html",)).get_content()
    click = html.unescape(re.search(r'<a href="([^"]+)"', body).group(1))
    pixel = html.unescape(re.search(r'<img src="([^"]+)"', body).group(1))
    return click, pixel


def forged(url: str) -> str:
    head, _, token = url.rpartition("/")
    return f"{head}/{'A' if token[0] != 'A' else 'B'}{token[1:]}"


async def test_opens_and_clicks_through_the_real_links_count_once_and_forged_ones_not_at_all(system):
    _, gateway, smtp = system
    address = f"reader.{uuid.uuid4().hex[:8]}@example.com"
    campaign = await start(gateway, [{"email": address, "first_name": "Rea"}], [email()])
    stats = await completed(gateway, campaign)
    assert (stats["sent"], stats["opens"], stats["clicks"]) == (1, 0, 0)
    [mail] = [m for m in smtp.received if m.envelope_to == [address]]
    click, pixel = links(mail)

    async with aiohttp.ClientSession() as browser:
        for url in (forged(pixel), forged(click), click.replace("sale", "evil")):
            async with browser.get(url, headers=PERSON, allow_redirects=False) as answer:
                assert answer.status == 404, url
        async with browser.get(pixel, headers={"User-Agent": "YahooMailProxy; https://help.yahoo.com"}) as answer:
            assert answer.status == 200
        for _ in range(2):
            async with browser.get(pixel, headers=PERSON) as answer:
                assert answer.status == 200 and answer.content_type == "image/gif"
            async with browser.get(click, headers=PERSON, allow_redirects=False) as answer:
                assert answer.status == 302 and answer.headers["Location"] == "https://shop.example/sale?a=1&b=2"

    stats = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}/stats")
    assert (stats["opens"], stats["clicks"], stats["machine_opens"], stats["unsubscribes"]) == (1, 1, 1, 0)
    assert (stats["open_rate"], stats["click_rate"], stats["click_to_open_rate"]) == (1.0, 1.0, 1.0)
    assert [(s["step_index"], s["opens"], s["clicks"]) for s in stats["steps"]] == [(0, 1, 1)]


async def test_a_one_click_unsubscribe_stops_the_next_step_for_that_contact_only(system):
    _, gateway, smtp = system
    leaving, staying = (f"{who}.{uuid.uuid4().hex[:8]}@example.com" for who in ("leaving", "staying"))
    campaign = await start(gateway, [{"email": leaving, "first_name": "Lea"}, {"email": staying, "first_name": "Sta"}],
                           [email("First"), {"type": "WAIT", "config": {"seconds": 10}}, email("Second")])

    def first_mail_of(address):
        return next((m for m in smtp.received if m.envelope_to == [address]), None)

    mail = await eventually(lambda: first_mail_of(leaving), "the first email", timeout=60)
    unsubscribe = re.search(r"<(http[^>]+)>", mail.message["List-Unsubscribe"]).group(1)
    async with aiohttp.ClientSession() as client:
        async with client.get(unsubscribe) as answer:  # a scanner's GET: a page, no change
            assert answer.status == 200 and "<form method=\"post\"" in await answer.text()
        async with client.post(unsubscribe, data="List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}) as answer:
            assert answer.status == 200

    stats = await completed(gateway, campaign)
    assert [m.subject for m in smtp.received if m.envelope_to == [leaving]] == ["First"]
    assert sorted(m.subject for m in smtp.received if m.envelope_to == [staying]) == ["First", "Second"]
    assert (stats["sent"], stats["skipped_no_consent"], stats["unsubscribes"]) == (3, 1, 1)
    assert [(s["step_index"], s["unsubscribes"], s["skipped_no_consent"]) for s in stats["steps"]] == [
        (0, 1, 0), (2, 0, 1)]
