"""Wires campaign-api together: the gateway app, its middlewares, consumers and relay."""

import asyncio
import hashlib
import hmac
import uuid
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from campaign_api import docs_page, tracking
from campaign_api.adapters.postgres import CampaignRepository
from campaign_api.adapters.upstream import REQUEST_ID, Upstreams
from campaign_api.http import CAMPAIGNS, ERRORS, OPERATIONS, UPSTREAMS, routes
from campaign_api.settings import Settings
from contracts import topics
from servicekit import openapi, resources
from servicekit.http import Problem, health_route, problem_middleware
from servicekit.kafka import ConsumerLoop, Subscription, Topics
from servicekit.outbox import OutboxRelay

log = structlog.get_logger()
PUBLIC_PREFIXES = ("/healthz", "/u/", "/t/", "/api/openapi.json", "/api/docs")


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def api_key_middleware(keys: str):
    """Bearer API keys, kept only as hashes and compared in constant time."""
    hashes = [_hash(key.strip()) for key in keys.split(",") if key.strip()]
    if not hashes:
        log.warning("api_open", reason="API_KEYS is empty: every request is accepted")

    @web.middleware
    async def middleware(request: web.Request, handler):
        if hashes and not request.path.startswith(PUBLIC_PREFIXES):
            scheme, _, key = request.headers.get("Authorization", "").partition(" ")
            offered = _hash(key.strip())
            if scheme.lower() != "bearer" or not any([hmac.compare_digest(offered, h) for h in hashes]):
                return Problem(401, "Unauthorized", "send Authorization: Bearer <API key>").response(request.path)
        return await handler(request)

    return middleware


@web.middleware
async def request_id_middleware(request: web.Request, handler):
    request[REQUEST_ID] = request.headers.get(REQUEST_ID) or str(uuid.uuid4())
    with structlog.contextvars.bound_contextvars(request_id=request[REQUEST_ID]):
        response = await handler(request)
    if not response.prepared:  # a streamed (proxied) answer carries it already
        response.headers[REQUEST_ID] = request[REQUEST_ID]
    return response


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, problem_middleware(ERRORS), api_key_middleware(settings.api_keys)],
        client_max_size=1024 * 1024,
    )
    app.cleanup_ctx.append(
        resources.postgres(settings, "campaign_api", Path(__file__).parent / "migrations", with_outbox=True)
    )
    app.cleanup_ctx.append(resources.kafka_publisher(settings))

    async def adapters(app: web.Application):
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5,
                                                                     sock_read=settings.upstream_timeout_seconds))
        app[CAMPAIGNS] = CampaignRepository(app[resources.POOL])
        app[UPSTREAMS] = Upstreams(session, settings.segment_svc_url, settings.flow_engine_url)
        yield
        await session.close()

    async def proxy(request: web.Request) -> web.StreamResponse:
        return await request.app[UPSTREAMS].proxy(request)

    app.cleanup_ctx.append(adapters)
    app.add_routes(routes)
    app[tracking.TRACKING_SECRET] = settings.tracking_secret
    app.add_routes(tracking.routes(CAMPAIGNS))
    for prefix in ("/api/contacts", "/api/segments", "/api/flows", "/api/send-time-suggestion"):
        app.router.add_route("*", prefix, proxy)
        app.router.add_route("*", prefix + "/{tail:.*}", proxy)
    app.add_routes([*health_route(), web.get("/api/openapi.json", gateway_openapi), *docs_page.routes()])
    return app


async def gateway_openapi(request: web.Request) -> web.Response:
    """campaign-api's operations and those of the services behind the gateway, in one document."""
    own = openapi.document("Campaigns API", OPERATIONS)
    return web.json_response(openapi.merge(own, *await request.app[UPSTREAMS].openapi_documents()))


def background(app: web.Application, settings: Settings):
    def tasks(stop: asyncio.Event):
        campaigns, publisher = app[CAMPAIGNS], app[resources.PUBLISHER]
        subscription = Subscription(
            "campaign-api", {topics.CAMPAIGN_SCHEDULED: campaigns.record_scheduled},
            batch_handlers={topics.EMAIL_STATUS: campaigns.record_outcomes},
        )
        loop = ConsumerLoop(settings.kafka_bootstrap_servers, Topics(settings.kafka_topic_prefix), subscription, publisher)
        return [loop.run(stop), OutboxRelay(app[resources.POOL], publisher).run(stop)]

    return tasks
