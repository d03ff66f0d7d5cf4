"""Accounts, sign-in and sessions on in-memory fakes; the gateway's rule of who may call
the API (an API key, or a session whose changes carry its CSRF token), on a small app."""

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from campaign_api import gateway, handlers
from campaign_api.domain import AccountExists, Credentials, NewAccount, SignInRefused, session_key
from campaign_api.settings import Settings
from campaign_api.throttle import TooManyAttempts
from servicekit.wiring import DEPENDENCIES

from .fakes import World

PASSWORD = "correct horse battery"


@pytest.fixture
def world() -> World:
    return World()


async def an_account(world: World, email="ann@example.com"):
    return await handlers.add_account(NewAccount(email=email, password=PASSWORD), world.uow, world.passwords)


async def test_an_account_keeps_a_hash_of_its_password_never_the_password(world):
    account = await an_account(world)
    assert account.password_hash != PASSWORD
    with pytest.raises(AccountExists):
        await an_account(world, "ANN@example.com")


def test_an_account_needs_a_valid_email_and_a_long_password():
    with pytest.raises(ValidationError, match="email"):
        NewAccount(email="not-an-email", password=PASSWORD)
    with pytest.raises(ValidationError, match="password"):
        NewAccount(email="ann@example.com", password="short")


async def sign_in(world: World, email: str, password: str, hours: float = 1, client: str = "192.0.2.1"):
    return await handlers.sign_in(Credentials(email=email, password=password), client, hours, world.uow,
                                  world.accounts, world.passwords, world.throttle)


async def test_after_too_many_failures_even_the_right_password_waits_for_the_window(world):
    await an_account(world)
    for _ in range(3):
        with pytest.raises(SignInRefused):
            await sign_in(world, "ann@example.com", "wrong password!")
    with pytest.raises(TooManyAttempts) as refused:
        await sign_in(world, "ann@example.com", PASSWORD)
    assert refused.value.retry_after == 60
    with pytest.raises(TooManyAttempts):  # the same email from elsewhere
        await sign_in(world, "ANN@example.com", PASSWORD, client="198.51.100.7")
    world.seconds = 60.0
    session, _ = await sign_in(world, "ann@example.com", PASSWORD)
    assert session.email == "ann@example.com"


async def test_guesses_from_one_address_are_throttled_whatever_the_emails(world):
    await an_account(world)
    for n in range(3):
        with pytest.raises(SignInRefused):
            await sign_in(world, f"guess{n}@example.com", PASSWORD)
    with pytest.raises(TooManyAttempts):
        await sign_in(world, "ann@example.com", PASSWORD)
    session, _ = await sign_in(world, "ann@example.com", PASSWORD, client="198.51.100.7")
    assert session.email == "ann@example.com"


async def test_the_right_password_opens_a_session_whose_token_is_kept_as_a_hash(world):
    await an_account(world)
    session, token = await sign_in(world, "Ann@example.com", PASSWORD, hours=12)
    assert session.email == "ann@example.com" and len(session.csrf_token) >= 32
    assert list(world.sessions.rows) == [session_key(token)], "the token itself is not stored"
    assert await handlers.session_of(token, world.sessions) == session
    await handlers.sign_out(token, world.uow)
    assert await handlers.session_of(token, world.sessions) is None


async def test_an_unknown_email_and_a_wrong_password_are_refused_alike_after_the_same_work(world):
    await an_account(world)
    for email, password in (("ann@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)):
        with pytest.raises(SignInRefused):
            await sign_in(world, email, password, client=email)  # apart: the throttle is not what is tested
    assert len(world.passwords.verified) == 2, "a password is verified for an unknown email too (the decoy)"
    assert world.passwords.verified[1] == world.passwords.decoy
    assert world.sessions.rows == {}


async def test_an_expired_session_is_no_session(world):
    account = await an_account(world)
    await world.sessions.add(session_key("old"), account.id, "csrf", datetime.now(UTC) - timedelta(seconds=1))
    assert await handlers.session_of("old", world.sessions) is None
    assert await handlers.session_of(None, world.sessions) is None


# The gateway's rule.

@pytest.fixture
async def client_of(world):
    clients = []

    async def make(api_keys: str = "") -> TestClient:
        settings = Settings(api_keys=api_keys, tracking_secret="a-secret-of-our-own")
        app = web.Application(middlewares=[gateway.api_key_middleware(settings)])
        app[DEPENDENCIES] = {"sessions": world.sessions, "accounts": world.accounts}

        async def answer(request: web.Request) -> web.Response:
            session = request.get(gateway.SESSION)
            return web.json_response({"who": session.email if session else None})

        app.router.add_route("*", "/api/campaigns", answer)
        app.router.add_route("*", "/api/session", answer)
        app.router.add_get("/{path:.*}", answer)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def a_session(world: World) -> tuple[str, str]:
    await an_account(world)
    session, token = await sign_in(world, "ann@example.com", PASSWORD)
    return token, session.csrf_token


async def test_the_api_is_open_only_without_keys_and_without_accounts(client_of, world):
    client = await client_of()
    assert (await client.get("/api/campaigns")).status == 200
    await an_account(world)
    refused = await client.get("/api/campaigns")
    assert refused.status == 401 and refused.content_type == "application/problem+json"
    keyed = await client_of("k1")
    assert (await keyed.get("/api/campaigns")).status == 401
    assert (await keyed.get("/api/campaigns", headers={"Authorization": "Bearer k1"})).status == 200
    assert (await keyed.get("/api/campaigns", headers={"Authorization": "Bearer k2"})).status == 401


async def test_a_session_reads_freely_and_changes_only_with_its_csrf_token(client_of, world):
    token, csrf = await a_session(world)
    client = await client_of("k1")
    cookies = {"Cookie": f"session={token}"}
    read = await client.get("/api/campaigns", headers=cookies)
    assert read.status == 200 and (await read.json())["who"] == "ann@example.com"
    assert (await client.post("/api/campaigns", headers=cookies)).status == 403
    assert (await client.post("/api/campaigns", headers={**cookies, "X-CSRF-Token": "forged"})).status == 403
    assert (await client.post("/api/campaigns", headers={**cookies, "X-CSRF-Token": csrf})).status == 200
    assert (await client.get("/api/campaigns", headers={"Cookie": "session=made-up"})).status == 401


async def test_sign_in_and_the_web_app_need_nothing(client_of, world):
    await an_account(world)
    client = await client_of("k1")
    assert (await client.post("/api/session")).status == 200
    assert (await client.get("/campaigns/anything")).status == 200
    assert (await client.get("/metrics")).status == 401
