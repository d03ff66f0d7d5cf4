"""The gateway in front of the services: request ids, API keys, the routes streamed through
to segment-svc and flow-engine, and one OpenAPI document of them all."""

import functools
import hashlib
import hmac
import uuid

import structlog
from aiohttp import web

from campaign_api.adapters.upstream import REQUEST_ID, Upstreams
from campaign_api.settings import Settings
from servicekit import openapi
from servicekit.http import Problem
from servicekit.routes import Routes

log = structlog.get_logger()
PUBLIC_PREFIXES = ("/healthz", "/u/", "/t/", "/api/openapi.json", "/api/docs")
PROXIED = ("/api/contacts", "/api/segments", "/api/flows", "/api/send-time-suggestion")
OPEN_API = "open: API_KEYS is empty, every request is accepted"


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def api_key_middleware(settings: Settings):
    """Bearer API keys, kept only as hashes and compared in constant time."""
    hashes = [_hash(key) for key in settings.keys]
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


def middlewares(settings: Settings) -> tuple:
    return request_id_middleware, api_key_middleware(settings)


async def health(settings: Settings) -> dict:
    """What /healthz adds: that the API is open, when it is."""
    return {} if settings.keys else {"api": OPEN_API}


def declare(routes: Routes) -> None:
    """The proxied routes (undocumented here: their services document them) and the
    gateway's document, campaign-api's operations merged with the upstreams' own."""

    async def proxy(request: web.Request, upstreams: Upstreams) -> web.StreamResponse:
        return await upstreams.proxy(request)

    for prefix in PROXIED:
        routes.route("*", prefix)(proxy)
        routes.route("*", prefix + "/{tail:.*}")(proxy)

    own = functools.cache(routes.document)  # built on first use, once every route is declared

    @routes.get("/api/openapi.json")
    async def gateway_openapi(request: web.Request, upstreams: Upstreams) -> web.Response:
        return web.json_response(openapi.merge(own(), *await upstreams.openapi_documents()))
