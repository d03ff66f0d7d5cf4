"""segment-svc as its process wires it, on a test's own pool (servicekit.wiring): the
adapters made by `bootstrap.adapters`, handlers bound to them by name, the routes served
over them."""

from aiohttp import web

from segment_svc.bootstrap import SERVICE
from segment_svc.settings import Settings
from servicekit import wiring


async def dependencies(pool, publisher=None, **settings) -> dict:
    """What the handlers take, by name; `settings` as given here, the defaults otherwise.
    (The adapters hold nothing to close, so they outlive their context.)"""
    async with wiring.dependencies(SERVICE, Settings(**settings), pool, publisher) as wired:
        return wired


async def handle(handler, event, wired: dict):
    """`handler` run on `event` as the consumer loop runs it."""
    return await wiring.bind(handler, wired)(event)


def app_of(wired: dict) -> web.Application:
    return wiring.routes_app(SERVICE, wired["settings"], wired)
