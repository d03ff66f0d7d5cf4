"""HTTP adapter of campaign-api: `/api/campaigns`, and the gateway routes it proxies."""

from datetime import UTC, datetime

from aiohttp import web
from pydantic import ValidationError

from campaign_api.adapters.postgres import CampaignRepository
from campaign_api.adapters.upstream import Upstreams
from campaign_api.domain import (
    Campaign,
    CampaignDetail,
    CampaignDraft,
    CampaignNotFound,
    CampaignPatch,
    CampaignStats,
    InvalidTransition,
    NotEditable,
    NothingToSend,
    PlannedSendView,
    SchedulePreview,
    SegmentNotFound,
    StatusChange,
    UpstreamUnavailable,
)
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

CAMPAIGNS = web.AppKey("campaigns", CampaignRepository)
UPSTREAMS = web.AppKey("upstreams", Upstreams)
routes = web.RouteTableDef()


async def _checked(request: web.Request, draft: CampaignDraft) -> tuple[CampaignDraft, list[str]]:
    """The segment must exist; a missing flow is dropped with a warning."""
    upstreams = request.app[UPSTREAMS]
    await upstreams.require_segment(draft.segment_id)
    warnings = []
    if draft.flow_id is not None and await upstreams.flow_steps(draft.flow_id) is None:
        warnings.append(f"flow {draft.flow_id} was not found: the campaign was saved without a flow")
        draft = draft.model_copy(update={"flow_id": None})
    return draft, warnings


@routes.post("/api/campaigns")
async def create_campaign(request: web.Request) -> web.Response:
    draft, warnings = await _checked(request, await read_json(request, CampaignDraft))
    return json_response(await request.app[CAMPAIGNS].add(draft, warnings), status=201)


@routes.get("/api/campaigns")
async def list_campaigns(request: web.Request) -> web.Response:
    after, limit = page_request(request)
    status = request.query.get("status")
    if status is not None and status not in CampaignStatus.__members__.values():
        raise Problem(400, "Invalid query", f"status must be one of {[s.value for s in CampaignStatus]}",
                      errors=[{"path": "$.status", "message": "unknown status"}])
    return page_response(await request.app[CAMPAIGNS].page(status and CampaignStatus(status), after, limit), limit)


@routes.get("/api/campaigns/{id}")
async def get_campaign(request: web.Request) -> web.Response:
    campaign = await request.app[CAMPAIGNS].get(uuid_param(request))
    history = await request.app[CAMPAIGNS].history(campaign.id)
    return json_response(CampaignDetail(**campaign.model_dump(), status_history=history))


@routes.patch("/api/campaigns/{id}")
async def update_campaign(request: web.Request) -> web.Response:
    campaign_id = uuid_param(request)
    current = await request.app[CAMPAIGNS].get(campaign_id)
    if current.status is not CampaignStatus.DRAFT:
        raise NotEditable(current.status)
    patch = await read_json(request, CampaignPatch)
    try:
        merged = CampaignDraft.model_validate(
            current.model_dump(include=set(CampaignDraft.model_fields)) | patch.model_dump(exclude_unset=True)
        )
    except ValidationError as error:
        raise invalid(error) from None
    draft, warnings = await _checked(request, merged)
    return json_response(await request.app[CAMPAIGNS].replace(campaign_id, draft, warnings))


@routes.delete("/api/campaigns/{id}")
async def delete_campaign(request: web.Request) -> web.Response:
    await request.app[CAMPAIGNS].delete(uuid_param(request))
    return web.Response(status=204)


@routes.put("/api/campaigns/{id}/status")
async def change_status(request: web.Request) -> web.Response:
    campaign_id = uuid_param(request)
    change = await read_json(request, StatusChange)
    campaigns, upstreams = request.app[CAMPAIGNS], request.app[UPSTREAMS]
    if change.status is CampaignStatus.ACTIVE and (await campaigns.get(campaign_id)).status is CampaignStatus.DRAFT:

        async def steps_of(campaign: Campaign):
            return await upstreams.flow_steps(campaign.flow_id) if campaign.flow_id else None

        return json_response(await campaigns.activate(campaign_id, steps_of))
    return json_response(await campaigns.change_status(campaign_id, change.status))


@routes.get("/api/campaigns/{id}/stats")
async def campaign_stats(request: web.Request) -> web.Response:
    return json_response(await request.app[CAMPAIGNS].stats(uuid_param(request)))


@routes.get("/api/campaigns/{id}/schedule-preview")
async def schedule_preview(request: web.Request) -> web.Response:
    campaign = await request.app[CAMPAIGNS].get(uuid_param(request))
    flow_steps = await request.app[UPSTREAMS].flow_steps(campaign.flow_id) if campaign.flow_id else None
    try:
        planned = campaign.plan(campaign.steps_or_content(flow_steps), datetime.now(UTC))
    except NothingToSend:
        planned = []  # nothing to send yet: nothing planned
    return json_response(SchedulePreview(
        campaign_id=campaign.id, timezone=campaign.timezone,
        sends=[PlannedSendView(step_index=p.step_index, utc=p.due_at, local=p.local(campaign.timezone))
               for p in planned],
    ))


CAMPAIGN = "/api/campaigns/{id}"
OPERATIONS = [
    openapi.Operation("POST", "/api/campaigns", "Create a draft campaign (the segment must exist; a missing flow is"
                      " dropped with a warning)", body=CampaignDraft, response=Campaign, status=201,
                      errors=(400, 413, 415, 422, 503)),
    openapi.Operation("GET", "/api/campaigns", "List campaigns", response=openapi.page_of(Campaign), errors=(400,),
                      query={**openapi.PAGING, "status": {"type": "string", "enum": [s.value for s in CampaignStatus]}}),
    openapi.Operation("GET", CAMPAIGN, "Get a campaign and its status history", response=CampaignDetail,
                      errors=(404,)),
    openapi.Operation("PATCH", CAMPAIGN, "Change a draft", body=CampaignPatch, response=Campaign,
                      errors=(400, 404, 409, 413, 415, 422, 503)),
    openapi.Operation("DELETE", CAMPAIGN, "Delete a draft", status=204, errors=(404, 409)),
    openapi.Operation("PUT", CAMPAIGN + "/status", "Activate, pause, resume or complete", body=StatusChange,
                      response=Campaign, errors=(400, 404, 409, 413, 415, 422, 503)),
    openapi.Operation("GET", CAMPAIGN + "/stats", "Delivery figures", response=CampaignStats, errors=(404,)),
    openapi.Operation("GET", CAMPAIGN + "/schedule-preview", "When each email will go, UTC and local",
                      response=SchedulePreview, errors=(404, 422, 503)),
]


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
}
