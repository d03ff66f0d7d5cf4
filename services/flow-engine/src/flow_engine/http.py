"""HTTP adapter of flow-engine: `/api/flows`."""

from aiohttp import web
from servicekit.http import (
    Problem,
    json_response,
    page_request,
    page_response,
    read_json,
    uuid_param,
)

from flow_engine.adapters.postgres import FlowRepository
from flow_engine.domain import FlowDraft, FlowNotFound

FLOWS = web.AppKey("flows", FlowRepository)
routes = web.RouteTableDef()


@routes.post("/api/flows")
async def create_flow(request: web.Request) -> web.Response:
    draft = await read_json(request, FlowDraft)
    return json_response(await request.app[FLOWS].add(draft), status=201)


@routes.get("/api/flows")
async def list_flows(request: web.Request) -> web.Response:
    after, limit = page_request(request)
    return page_response(await request.app[FLOWS].page(after, limit), limit)


@routes.get("/api/flows/{id}")
async def get_flow(request: web.Request) -> web.Response:
    return json_response(await request.app[FLOWS].get(uuid_param(request)))


@routes.put("/api/flows/{id}")
async def replace_flow(request: web.Request) -> web.Response:
    flow_id = uuid_param(request)
    draft = await read_json(request, FlowDraft)
    return json_response(await request.app[FLOWS].replace(flow_id, draft))


@routes.delete("/api/flows/{id}")
async def delete_flow(request: web.Request) -> web.Response:
    await request.app[FLOWS].delete(uuid_param(request))
    return web.Response(status=204)


ERRORS = {FlowNotFound: lambda error: Problem(404, "Flow not found", f"no flow {error}")}
