"""campaign-api when segment-svc or flow-engine does not answer: 503, nothing stored."""

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from campaign_api import gateway
from campaign_api.adapters.upstream import Upstreams
from campaign_api.http import ERRORS, routes
from servicekit.http import problem_middleware
from tests.support.ports import free_port


class NothingStored:
    def __call__(self, *locks, shared=False):
        raise AssertionError("nothing may be stored when an upstream is away")


async def test_an_unreachable_segment_service_is_a_503_and_nothing_is_stored():
    closed = f"http://127.0.0.1:{free_port()}"
    app = web.Application(middlewares=[problem_middleware(ERRORS)])
    session = aiohttp.ClientSession()
    dependencies = {"uow": NothingStored(), "upstreams": Upstreams(session, closed, closed)}
    app.add_routes(routes.route_defs(lambda request: dependencies | dict.fromkeys(routes.needs() - set(dependencies))))
    async with TestClient(TestServer(app)) as client:
        answer = await client.post("/api/campaigns", json={
            "name": "c", "segment_id": "4f1e2a3b-0000-4000-8000-000000000000", "start_date": "2030-01-01",
            "start_time_of_day": "09:00", "content": {"subject": "s", "text": "t"}})
        problem = await answer.json(content_type=None)
    await session.close()
    assert answer.status == 503 and problem["title"] == "Service unavailable"


async def test_the_proxy_keeps_the_callers_credentials_to_itself():
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({name.lower(): value for name, value in request.headers.items()})

    upstream_app = web.Application()
    upstream_app.router.add_get("/api/contacts", echo)
    async with TestClient(TestServer(upstream_app)) as upstream:
        base = str(upstream.make_url("")).rstrip("/")
        session = aiohttp.ClientSession()
        app = web.Application(middlewares=[gateway.request_id_middleware])
        proxy = Upstreams(session, base, base)

        async def through(request: web.Request) -> web.StreamResponse:
            return await proxy.proxy(request)

        app.router.add_get("/api/contacts", through)
        async with TestClient(TestServer(app)) as client:
            answer = await client.get("/api/contacts", headers={
                "Authorization": "Bearer k1", "Cookie": "session=secret", "X-CSRF-Token": "t", "Accept": "x/y"})
            seen = await answer.json()
        await session.close()
    assert not {"authorization", "cookie", "x-csrf-token"} & set(seen), seen
    assert seen["accept"] == "x/y" and seen["x-request-id"]
