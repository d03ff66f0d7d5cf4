"""The routes of sign-in and of the recipients' CSV on a small app over the fakes: the
cookie's attributes, and the CSV's header row and quoting."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from campaign_api import handlers
from campaign_api.domain import NewAccount
from campaign_api.http import ERRORS, routes
from campaign_api.settings import Settings
from servicekit.http import problem_middleware

from .fakes import World
from .test_handlers import a_campaign

PASSWORD = "correct horse battery"


@pytest.fixture
async def client():
    world = World()
    await handlers.add_account(NewAccount(email="ann@example.com", password=PASSWORD), world.uow, world.passwords)
    dependencies = {"settings": Settings(api_keys="k", tracking_secret="a-secret-of-our-own"), "uow": world.uow,
                    "accounts": world.accounts, "sessions": world.sessions, "passwords": world.passwords,
                    "throttle": world.throttle,
                    "campaigns": world.campaigns, "recipients": world.recipients, "upstreams": world.upstreams,
                    "contact_history": world.contact_history}
    app = web.Application(middlewares=[problem_middleware(ERRORS)])
    app.add_routes(routes.route_defs(lambda request: dependencies | dict.fromkeys(routes.needs() - set(dependencies))))
    async with TestClient(TestServer(app)) as test_client:
        test_client.world = world
        yield test_client


async def test_sign_in_sets_an_httponly_strict_cookie_secure_behind_https(client):
    answer = await client.post("/api/session", json={"email": "ann@example.com", "password": PASSWORD})
    assert answer.status == 200 and set(await answer.json()) == {"email", "csrf_token"}
    cookie = answer.cookies["session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/" and not cookie["secure"]
    behind_https = await client.post("/api/session", json={"email": "ann@example.com", "password": PASSWORD},
                                     headers={"X-Forwarded-Proto": "https"})
    assert behind_https.cookies["session"]["secure"]
    refused = await client.post("/api/session", json={"email": "ann@example.com", "password": "wrong"})
    unknown = await client.post("/api/session", json={"email": "bob@example.com", "password": PASSWORD})
    assert refused.status == unknown.status == 401
    assert await refused.json() == await unknown.json() | {"instance": "/api/session"}
    bad = await client.post("/api/session", json={"email": "ann@example.com"})
    assert bad.status == 422 and (await bad.json())["errors"][0]["path"] == "$.password"


async def test_the_session_is_read_and_ended(client):
    signed = await client.post("/api/session", json={"email": "ann@example.com", "password": PASSWORD})
    token = signed.cookies["session"].value
    read = await client.get("/api/session", headers={"Cookie": f"session={token}"})
    assert read.status == 200 and (await read.json())["email"] == "ann@example.com"
    ended = await client.delete("/api/session", headers={"Cookie": f"session={token}"})
    assert ended.status == 204
    assert (await client.get("/api/session", headers={"Cookie": f"session={token}"})).status == 401


async def test_the_recipients_csv_has_a_header_row_and_no_formulas(client):
    world = client.world
    campaign = await a_campaign(world)
    contact = uuid4()
    world.upstreams.contacts[contact] = {"email": "=cmd@example.com"}
    world.recipients.outcomes.append({
        "send_id": uuid4(), "campaign_id": campaign.id, "contact_id": contact, "step_index": 0, "status": "failed",
        "attempt": 1, "smtp_code": 550, "smtp_message": "-no such user", "updated_at": datetime.now(UTC)})
    answer = await client.get(f"/api/campaigns/{campaign.id}/recipients", params={"format": "csv"})
    assert answer.status == 200 and answer.content_type == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    header, row = (await answer.text()).splitlines()
    assert header == "send_id,contact_id,email,step_index,status,attempt,smtp_code,smtp_message,updated_at"
    assert ",'=cmd@example.com,0,failed,1,550,'-no such user," in row
    wrong = await client.get(f"/api/campaigns/{campaign.id}/recipients", params={"status": "lost"})
    assert wrong.status == 400 and (await wrong.json())["errors"][0]["path"] == "$.status"
    assert (await client.get(f"/api/campaigns/{uuid4()}/recipients", params={"format": "csv"})).status == 404


async def test_too_many_failed_sign_ins_answer_429_with_retry_after(client):
    for _ in range(3):
        answer = await client.post("/api/session", json={"email": "ann@example.com", "password": "wrong password!"})
        assert answer.status == 401
    answer = await client.post("/api/session", json={"email": "ann@example.com", "password": PASSWORD})
    assert answer.status == 429 and answer.headers["Retry-After"] == "60"
    assert (await answer.json())["title"] == "Too many sign-in attempts"


async def test_a_contacts_engagement_is_served_here_not_proxied_and_a_bad_id_is_a_404(client):
    contact_id = uuid4()
    client.world.recipients.outcomes.append({
        "send_id": uuid4(), "campaign_id": uuid4(), "contact_id": contact_id, "step_index": 0, "status": "sent",
        "attempt": 1, "smtp_code": 250, "smtp_message": None, "updated_at": datetime.now(UTC)})
    headers = {"Authorization": "Bearer k"}
    answer = await client.get(f"/api/contacts/{contact_id}/engagement", headers=headers)
    assert answer.status == 200, await answer.text()
    assert (await answer.json())["sent"] == 1
    answer = await client.get("/api/contacts/not-an-id/engagement", headers=headers)
    assert (answer.status, answer.content_type) == (404, "application/problem+json")
