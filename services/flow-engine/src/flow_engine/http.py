"""HTTP adapter of flow-engine: `/api/flows`."""

from aiohttp import web

from flow_engine.adapters.postgres import FlowRepository
from flow_engine.domain import Flow, FlowDraft, FlowNotFound
from servicekit import openapi
from servicekit.http import Problem, resource_routes

FLOWS = web.AppKey("flows", FlowRepository)
OPERATIONS = openapi.resource_operations("/api/flows", "flow", Flow, create=FlowDraft, update=FlowDraft)
routes = [*resource_routes("/api/flows", FLOWS, create=FlowDraft, update=FlowDraft),
          openapi.route(OPERATIONS, "flow-engine")]

ERRORS = {FlowNotFound: lambda error: Problem(404, "Flow not found", f"no flow {error}")}
