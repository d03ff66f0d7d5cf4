"""Wires flow-engine together: the app and its repository."""

from pathlib import Path

from aiohttp import web

from flow_engine.adapters.postgres import FlowRepository
from flow_engine.http import ERRORS, FLOWS, routes
from flow_engine.settings import Settings
from servicekit import resources
from servicekit.http import health_route, problem_middleware


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[problem_middleware(ERRORS)])
    app.cleanup_ctx.append(resources.postgres(settings, "flow", Path(__file__).parent / "migrations"))

    async def repositories(app: web.Application):
        app[FLOWS] = FlowRepository(app[resources.POOL])
        yield

    app.cleanup_ctx.append(repositories)
    app.add_routes(routes)
    app.add_routes(health_route())
    return app
