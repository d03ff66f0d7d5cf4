"""HTTP adapter of flow-engine: `/api/flows`."""

from aiohttp import web

from flow_engine.adapters.postgres import FlowRepository
from flow_engine.domain import FlowDraft, FlowNotFound
from servicekit.http import Problem, resource_routes

FLOWS = web.AppKey("flows", FlowRepository)
routes = resource_routes("/api/flows", FLOWS, create=FlowDraft, update=FlowDraft)

ERRORS = {FlowNotFound: lambda error: Problem(404, "Flow not found", f"no flow {error}")}
