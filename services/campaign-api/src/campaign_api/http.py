"""campaign-api's routes, each declared once with its OpenAPI operation: `/api/campaigns`
here, and the links in emails, the gateway and the docs page from their modules. A route
reads the request and answers; the use case is in handlers.py."""

from aiohttp import web

from campaign_api import docs_page, gateway, handlers, tracking
from campaign_api.adapters.postgres import CampaignRepository, RunRepository, StepCounters
from campaign_api.adapters.upstream import Upstreams
from campaign_api.domain import (
    Campaign,
    CampaignDetail,
    CampaignDraft,
    CampaignNotFound,
    CampaignPatch,
    CampaignStats,
    ChangedDuringActivation,
    InvalidDraft,
    InvalidTransition,
    NotEditable,
    NothingToSend,
    SchedulePreview,
    SegmentNotFound,
    StatusChange,
    UpstreamUnavailable,
)
from campaign_api.handlers import Uow
from contracts.enums import CampaignStatus
from servicekit import openapi
from servicekit.http import (
    Problem,
    invalid,
    json_response,
    page_request,
    page_response,
    read_json,
    uuid_param,
)
from servicekit.routes import Routes

routes = Routes("Campaigns API", openapi_path=None)  # the gateway serves the merged document
CAMPAIGN = "/api/campaigns/{id}"
_STATUSES = [s.value for s in CampaignStatus]


@routes.post("/api/campaigns", "Create a draft campaign (the segment must exist; a missing flow is dropped with a"
             " warning)", body=CampaignDraft, response=Campaign, status=201, errors=(400, 413, 415, 422, 503))
async def create_campaign(request: web.Request, uow: Uow, upstreams: Upstreams) -> web.Response:
    draft = await read_json(request, CampaignDraft)
    return json_response(await handlers.create_campaign(draft, uow, upstreams), status=201)


@routes.get("/api/campaigns", "List campaigns", response=openapi.page_of(Campaign), errors=(400,),
            query={**openapi.PAGING, "status": {"type": "string", "enum": _STATUSES}})
async def list_campaigns(request: web.Request, campaigns: CampaignRepository) -> web.Response:
    after, limit = page_request(request)
    status = request.query.get("status")
    if status is not None and status not in CampaignStatus.__members__.values():
        raise Problem(400, "Invalid query", f"status must be one of {_STATUSES}",
                      errors=[{"path": "$.status", "message": "unknown status"}])
    return page_response(await handlers.list_campaigns(status and CampaignStatus(status), after, limit, campaigns),
                         limit)


@routes.get(CAMPAIGN, "Get a campaign and its status history", response=CampaignDetail, errors=(404,))
async def get_campaign(request: web.Request, campaigns: CampaignRepository) -> web.Response:
    return json_response(await handlers.show_campaign(uuid_param(request), campaigns))


@routes.patch(CAMPAIGN, "Change a draft", body=CampaignPatch, response=Campaign,
              errors=(400, 404, 409, 413, 415, 422, 503))
async def update_campaign(request: web.Request, uow: Uow, campaigns: CampaignRepository,
                          upstreams: Upstreams) -> web.Response:
    async def patch() -> CampaignPatch:
        return await read_json(request, CampaignPatch)

    return json_response(await handlers.update_campaign(uuid_param(request), patch, uow, campaigns, upstreams))


@routes.delete(CAMPAIGN, "Delete a draft", status=204, errors=(404, 409))
async def delete_campaign(request: web.Request, uow: Uow) -> web.Response:
    await handlers.delete_campaign(uuid_param(request), uow)
    return web.Response(status=204)


@routes.put(CAMPAIGN + "/status", "Activate, pause, resume or complete", body=StatusChange, response=Campaign,
            errors=(400, 404, 409, 413, 415, 422, 503))
async def change_status(request: web.Request, uow: Uow, campaigns: CampaignRepository,
                        upstreams: Upstreams) -> web.Response:
    campaign_id = uuid_param(request)
    change = await read_json(request, StatusChange)
    return json_response(await handlers.change_status(campaign_id, change.status, uow, campaigns, upstreams))


@routes.get(CAMPAIGN + "/stats", "Delivery figures", response=CampaignStats, errors=(404,))
async def campaign_stats(request: web.Request, campaigns: CampaignRepository, runs: RunRepository,
                         counters: StepCounters) -> web.Response:
    return json_response(await handlers.report_stats(uuid_param(request), campaigns, runs, counters))


@routes.get(CAMPAIGN + "/schedule-preview", "When each email will go, UTC and local", response=SchedulePreview,
            errors=(404, 422, 503))
async def schedule_preview(request: web.Request, campaigns: CampaignRepository, upstreams: Upstreams) -> web.Response:
    return json_response(await handlers.preview_schedule(uuid_param(request), campaigns, upstreams))


tracking.declare(routes)
docs_page.declare(routes)
gateway.declare(routes)


def _transition_problem(error: InvalidTransition) -> Problem:
    return Problem(409, "Transition not allowed", str(error), current_status=error.current.value, allowed=error.allowed)


ERRORS = {
    CampaignNotFound: lambda error: Problem(404, "Campaign not found", f"no campaign {error}"),
    SegmentNotFound: lambda error: Problem(
        422, "Segment not found", f"no segment {error}",
        errors=[{"path": "$.segment_id", "message": "no such segment"}],
    ),
    UpstreamUnavailable: lambda error: Problem(503, "Service unavailable", str(error)),
    InvalidTransition: _transition_problem,
    NotEditable: lambda error: Problem(409, "Campaign not editable", str(error), current_status=error.current.value),
    NothingToSend: lambda error: Problem(422, "Nothing to send", str(error)),
    InvalidDraft: lambda error: invalid(error.error),
    ChangedDuringActivation: lambda error: Problem(409, "Campaign changed", str(error)),
}
