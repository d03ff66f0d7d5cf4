"""HTTP adapter of flow-engine: `/api/flows`, stored and read as they are (a flow's rules
are its model's validators, so there is no use case beyond storage, and no handlers.py)."""

from flow_engine.domain import Flow, FlowDraft, FlowNotFound
from servicekit.http import Problem
from servicekit.routes import Routes

routes = Routes("flow-engine")
routes.resource("/api/flows", "flow", "flows", Flow, create=FlowDraft, update=FlowDraft)

ERRORS = {FlowNotFound: lambda error: Problem(404, "Flow not found", f"no flow {error}")}
