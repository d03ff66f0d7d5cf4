"""segment-svc as its process wires it, on a test's own pool: the adapters made by
`bootstrap.adapters`, handlers bound to them by name (servicekit.wiring.bind), and the
routes served over them."""

from aiohttp import web

from segment_svc.bootstrap import adapters
from segment_svc.http import ERRORS, routes
from segment_svc.settings import Settings
from servicekit.http import problem_middleware
from servicekit.wiring import bind


async def dependencies(pool, publisher=None, **settings) -> dict:
    """What the handlers take, by name; `settings` as given here, the defaults otherwise.
    (The adapters hold nothing to close, so they outlive their context.)"""
    made_with = Settings(**settings)
    async with adapters(made_with, pool, publisher) as made:
        return {"settings": made_with, "pool": pool, "publisher": publisher, **made}


async def handle(handler, event, wired: dict):
    """`handler` run on `event` as the consumer loop runs it."""
    return await bind(handler, wired)(event)


def app_of(wired: dict) -> web.Application:
    app = web.Application(middlewares=[problem_middleware(ERRORS)])
    app.add_routes(routes.route_defs(lambda request: wired))
    return app
