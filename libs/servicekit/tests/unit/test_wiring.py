"""The one wiring: handlers bound by name, subscriptions and routes built from data."""

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from servicekit.routes import Routes
from servicekit.settings import CommonSettings, TrackingSettings
from servicekit.wiring import Consume, Group, Service, bind, check, subscription


class Settings(CommonSettings):
    chunk_size: int = 7


async def on_one(event, store, clock=None):
    store.append((event, clock))


async def on_many(events, store):
    store.extend(events)


async def counts(store):
    return {"stored": len(store)}


@asynccontextmanager
async def no_adapters(settings, pool, publisher):
    yield {}


def test_a_handler_gets_its_adapters_by_name_and_its_defaults_when_none_is_given():
    store = []
    asyncio.run(bind(on_one, {"store": store, "unrelated": object()})("e1"))
    assert store == [("e1", None)]


def test_a_dependency_nobody_provides_is_named_at_start():
    with pytest.raises(LookupError, match=r"on_many needs \['store'\]"):
        bind(on_many, {"settings": Settings()})


def test_a_group_becomes_a_subscription_with_chunks_from_settings():
    group = Group("g", (Consume("a.topic", on_one), Consume("b.topic", on_many, batch=True, chunk="chunk_size",
                                                           concurrency=3)), from_start_if="empty")

    async def empty() -> bool:
        return True

    made = subscription(group, {"settings": Settings(), "store": [], "empty": empty})
    assert made.group == "g"
    assert list(made.handlers) == ["a.topic"] and list(made.batch_handlers) == ["b.topic"]
    assert made.chunks == {"b.topic": 7} and made.concurrency == {"b.topic": 3}
    assert made.from_start_if is empty


def test_check_names_what_a_route_lacks():
    routes = Routes("t")

    @routes.get("/x")
    async def x(request, ledger):
        return web.Response()

    service = Service("svc", "svc", Path("."), no_adapters, routes=routes, health=counts)
    with pytest.raises(LookupError, match=r"routes need \['ledger'\]"):
        check(service, {"store": []})
    with pytest.raises(LookupError, match="counts needs"):
        check(Service("svc", "svc", Path("."), no_adapters, health=counts), {})


class Thing(BaseModel):
    name: str


async def test_routes_are_served_with_their_adapters_and_documented_once():
    routes = Routes("things")

    @routes.post("/api/things", "Make a thing", body=Thing, response=Thing, status=201, errors=(422,))
    async def make(request, things):
        things.append(await request.json())
        return web.json_response(things[-1], status=201)

    @routes.get("/internal")
    async def hidden(request):
        return web.Response(text="yes")

    @routes.get("/api/things/first", "The first thing", response=Thing)
    async def first(request, things):
        return web.json_response(things[0])

    routes.static("/files", Path(__file__).parent)

    things = []
    app = web.Application()
    app.add_routes(routes.route_defs(lambda request: {"things": things}))
    async with TestClient(TestServer(app)) as client:
        assert (await client.post("/api/things", json={"name": "a"})).status == 201
        assert things == [{"name": "a"}]
        assert await (await client.get("/internal")).text() == "yes"
        assert (await client.head("/api/things/first")).status == 200, "GET routes answer HEAD too"
        assert (await client.get(f"/files/{Path(__file__).name}")).status == 200
        document = await (await client.get("/api/openapi.json")).json()
    assert list(document["paths"]) == ["/api/things", "/api/things/first"]
    operation = document["paths"]["/api/things"]["post"]
    assert operation["summary"] == "Make a thing" and {"201", "422"} <= set(operation["responses"])


def test_the_default_tracking_secret_is_refused_outside_development(monkeypatch):
    monkeypatch.delenv("TRACKING_SECRET", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    with pytest.raises(ValueError, match="TRACKING_SECRET is the default"):
        TrackingSettings()
    assert TrackingSettings(environment="development").tracking_secret == "change-me"
    assert TrackingSettings(tracking_secret="a-secret-of-ours").environment == "production"
    with pytest.raises(ValueError, match="at least 8"):
        TrackingSettings(tracking_secret="short")
