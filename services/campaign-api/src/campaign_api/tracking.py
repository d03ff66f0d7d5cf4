"""The links in emails, answered: the open pixel, click redirects and unsubscribing.

Public (no API key: recipients follow them). A link whose token does not verify gets a
404 and records nothing. Unsubscribing by GET only shows a page with a button, because
mail scanners fetch links; the POST (the button, or a mail client's RFC 8058 one-click)
unsubscribes at once.
"""

import base64
import html

from aiohttp import web

from campaign_api import handlers
from campaign_api.handlers import Uow
from campaign_api.settings import Settings
from contracts.links import CLICK, OPEN, UNSUBSCRIBE, SendRef, signed_ref
from servicekit.routes import Routes

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, private"}

# Opens that no person made: prefetching mail proxies and link scanners announce
# themselves in their User-Agent. Gmail's image proxy fetches when a person opens, so it
# is not among them. A fetch with no User-Agent at all is no mail client's either.
MACHINE_AGENTS = ("yahoomailproxy", "barracuda", "mimecast", "proofpoint", "zscaler", "symantec", "trendmicro",
                  "bot", "crawler", "spider", "headlesschrome", "python-requests", "go-http-client")


def is_machine(user_agent: str | None) -> bool:
    agent = (user_agent or "").lower()
    return not agent or any(marker in agent for marker in MACHINE_AGENTS)


def _ref(request: web.Request, secret: str, kind: str, *extra: str) -> SendRef:
    token = request.match_info["token"].removesuffix(".gif")
    ref = signed_ref(secret, kind, request.match_info["ref"], token, *extra)
    if ref is None:
        raise web.HTTPNotFound(text="This link is not valid.")
    return ref


async def opened(request: web.Request, settings: Settings, uow: Uow) -> web.Response:
    ref = _ref(request, settings.tracking_secret, OPEN)
    kind = "machine_open" if is_machine(request.headers.get("User-Agent")) else "open"
    await handlers.record_engagement(ref, kind, None, uow)
    return web.Response(body=_PIXEL, content_type="image/gif", headers=_NO_STORE)


async def clicked(request: web.Request, settings: Settings, uow: Uow) -> web.Response:
    target = request.query.get("u", "")
    ref = _ref(request, settings.tracking_secret, CLICK, target)
    if not target.startswith(("https://", "http://")):
        raise web.HTTPNotFound(text="This link is not valid.")
    await handlers.record_engagement(ref, "click", target, uow)
    raise web.HTTPFound(target, headers=_NO_STORE)


async def unsubscribe_page(request: web.Request, settings: Settings) -> web.Response:
    _ref(request, settings.tracking_secret, UNSUBSCRIBE)
    return _page("Unsubscribe", "Stop receiving these emails?",
                 f'<form method="post" action="{html.escape(request.path)}">'
                 '<button type="submit">Unsubscribe</button></form>')


async def unsubscribe(request: web.Request, settings: Settings, uow: Uow) -> web.Response:
    ref = _ref(request, settings.tracking_secret, UNSUBSCRIBE)
    await handlers.record_engagement(ref, "unsubscribe", None, uow)
    return _page("Unsubscribed", "You will not receive these emails any more.", "")


def declare(routes: Routes) -> None:
    """Undocumented: these are the links in emails, not the API."""
    routes.get("/t/o/{ref}/{token}")(opened)
    routes.get("/t/c/{ref}/{token}")(clicked)
    routes.get("/u/{ref}/{token}")(unsubscribe_page)
    routes.post("/u/{ref}/{token}")(unsubscribe)


def _page(title: str, message: str, extra: str) -> web.Response:
    body = (f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
            f'<meta name="viewport" content="width=device-width"></head>'
            f"<body><h1>{title}</h1><p>{message}</p>{extra}</body></html>")
    return web.Response(text=body, content_type="text/html", headers=_NO_STORE)
