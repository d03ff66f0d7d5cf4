"""The gateway in front of the services: request ids, API keys, the routes streamed through
to segment-svc and flow-engine, and one OpenAPI document of them all."""

import functools
import hashlib
import hmac
import uuid

import structlog
from aiohttp import web

from campaign_api import handlers
from campaign_api.adapters.postgres import AccountRepository
from campaign_api.adapters.upstream import REQUEST_ID, REQUEST_ID_KEY, Upstreams
from campaign_api.domain import SessionView
from campaign_api.settings import Settings
from servicekit import openapi
from servicekit.http import Problem
from servicekit.routes import Routes
from servicekit.wiring import DEPENDENCIES

log = structlog.get_logger()
PUBLIC_PREFIXES = ("/healthz", "/u/", "/t/", "/api/openapi.json", "/api/docs", "/api/session")
PROXIED = ("/api/contacts", "/api/segments", "/api/flows", "/api/send-time-suggestion")
OPEN_API = "open: API_KEYS is empty and no account exists, every request is accepted"
SESSION_COOKIE = "session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION = web.RequestKey("session", SessionView)


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _protected(path: str) -> bool:
    """The API and /metrics; the web app (every other path) and the links in emails are public."""
    return (path.startswith("/api/") or path == "/api" or path == "/metrics") and not path.startswith(PUBLIC_PREFIXES)


class OpenWhileNoAccount:
    """Whether the API is open: API_KEYS empty and no account yet. Once an account exists
    it stays closed (accounts are not deleted by the API), so only "none yet" is asked again."""

    def __init__(self, settings: Settings) -> None:
        self._keys = bool(settings.keys)
        self._accounts_seen = False

    async def __call__(self, accounts: AccountRepository) -> bool:
        if self._keys or self._accounts_seen:
            return False
        self._accounts_seen = await accounts.any()
        return not self._accounts_seen


def api_key_middleware(settings: Settings):
    """Who may call the API: a Bearer API key (kept only as hashes, compared in constant
    time), or a session cookie whose changes (POST, PUT, PATCH, DELETE) carry its CSRF token
    in X-CSRF-Token. Open to all only while API_KEYS is empty and no account exists."""
    hashes = [_hash(key) for key in settings.keys]
    is_open = OpenWhileNoAccount(settings)
    if not hashes:
        log.warning("api_open", reason="API_KEYS is empty: every request is accepted until an account exists")

    @web.middleware
    async def middleware(request: web.Request, handler):
        if not _protected(request.path):
            return await handler(request)
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, key = authorization.partition(" ")
            offered = _hash(key.strip())
            if scheme.lower() != "bearer" or not any([hmac.compare_digest(offered, h) for h in hashes]):
                return Problem(401, "Unauthorized", "send Authorization: Bearer <API key>").response(request.path)
            return await handler(request)
        dependencies = request.app[DEPENDENCIES]
        session = await handlers.session_of(request.cookies.get(SESSION_COOKIE), dependencies["sessions"])
        if session is not None:
            if request.method not in SAFE_METHODS and not hmac.compare_digest(
                    request.headers.get(CSRF_HEADER, "").encode(), session.csrf_token.encode()):
                return Problem(403, "CSRF token missing or wrong",
                               f"a change made with a session carries its csrf_token in {CSRF_HEADER}"
                               ).response(request.path)
            request[SESSION] = session
            return await handler(request)
        if await is_open(dependencies["accounts"]):
            return await handler(request)
        return Problem(401, "Unauthorized", "sign in (POST /api/session) or send Authorization: Bearer <API key>"
                       ).response(request.path)

    return middleware


@web.middleware
async def request_id_middleware(request: web.Request, handler):
    request[REQUEST_ID_KEY] = request.headers.get(REQUEST_ID) or str(uuid.uuid4())
    with structlog.contextvars.bound_contextvars(request_id=request[REQUEST_ID_KEY]):
        response = await handler(request)
    if not response.prepared:  # a streamed (proxied) answer carries it already
        response.headers[REQUEST_ID] = request[REQUEST_ID_KEY]
    return response


def middlewares(settings: Settings) -> tuple:
    return request_id_middleware, api_key_middleware(settings)


async def health(settings: Settings, accounts: AccountRepository) -> dict:
    """What /healthz adds: that the API is open, when it is."""
    return {} if settings.keys or await accounts.any() else {"api": OPEN_API}


def declare(routes: Routes) -> None:
    """The proxied routes (undocumented here: their services document them) and the
    gateway's document, campaign-api's operations merged with the upstreams' own."""

    async def proxy(request: web.Request, upstreams: Upstreams) -> web.StreamResponse:
        return await upstreams.proxy(request)

    for prefix in PROXIED:
        routes.route("*", prefix)(proxy)
        routes.route("*", prefix + "/{tail:.*}")(proxy)

    @functools.cache  # built on first use, once every route is declared
    def own() -> dict:
        return routes.document()

    @routes.get("/api/openapi.json")
    async def gateway_openapi(request: web.Request, upstreams: Upstreams) -> web.Response:
        return web.json_response(openapi.merge(own(), *await upstreams.openapi_documents()))


IMMUTABLE = "public, max-age=31536000, immutable"  # Vite's assets carry their content's hash in their names


def serve_app(routes: Routes) -> None:
    """The built web app (settings.frontend_dist) at `/`: its files, the hashed assets with a
    year's cache, and index.html (never cached) for every other path that is not the API's,
    so that each screen's URL loads the app. Declared last: every other route comes first."""

    @routes.get("/{path:.*}")
    async def web_app(request: web.Request, settings: Settings) -> web.StreamResponse:
        path = request.match_info["path"]
        if path == "api" or path.startswith("api/"):
            raise web.HTTPNotFound()  # an API path nobody serves: a problem+json 404, not the app
        dist = settings.frontend_dist.resolve()
        index = dist / "index.html"
        if not index.is_file():
            raise Problem(503, "Web app not built", f"no {index}: run `make up` or deploy/browser.sh")
        wanted = (dist / path).resolve() if path else index
        if wanted.is_file() and wanted.is_relative_to(dist) and wanted != index:
            cache = IMMUTABLE if wanted.is_relative_to(dist / "assets") else "no-cache"
            return web.FileResponse(wanted, headers={"Cache-Control": cache})
        return web.FileResponse(index, headers={"Cache-Control": "no-cache",
                                                "Content-Security-Policy": CONTENT_SECURITY_POLICY})


# Everything the app loads comes from the gateway; nothing is inlined but Vite's styles.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
                           " frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
