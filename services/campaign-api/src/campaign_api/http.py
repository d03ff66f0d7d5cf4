"""campaign-api's routes, each declared once with its OpenAPI operation: `/api/campaigns`
here, and the links in emails, the gateway and the docs page from their modules. A route
reads the request and answers; the use case is in handlers.py."""

import base64
import csv
import io
from datetime import datetime
from uuid import UUID

from aiohttp import web

from campaign_api import docs_page, gateway, handlers, tracking
from campaign_api.adapters.passwords import Passwords
from campaign_api.adapters.postgres import (
    AccountRepository,
    CampaignRepository,
    ContactHistory,
    Recipients,
    RunRepository,
    SessionRepository,
    StepCounters,
)
from campaign_api.adapters.upstream import Upstreams
from campaign_api.domain import (
    RECIPIENT_STATUSES,
    Activity,
    Campaign,
    CampaignDetail,
    CampaignDraft,
    CampaignNotFound,
    CampaignPatch,
    CampaignStats,
    ChangedDuringActivation,
    ContactEngagement,
    ContactNotFound,
    Credentials,
    FlowNotFound,
    InvalidDraft,
    InvalidTransition,
    NotEditable,
    NothingToSend,
    RecipientOutcome,
    RecipientPage,
    RenderedEmail,
    RenderRequest,
    SchedulePreview,
    SegmentNotFound,
    SessionView,
    SignInRefused,
    StatusChange,
    StepNotFound,
    SystemStatus,
    TemplateNotRenderable,
    TestSendAccepted,
    TestSendRequest,
    UpstreamUnavailable,
)
from campaign_api.handlers import Uow
from campaign_api.settings import Settings
from campaign_api.throttle import SignInThrottle, TooManyAttempts
from contracts.enums import CampaignStatus
from servicekit import openapi
from servicekit.health import HEALTH
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


@routes.get(CAMPAIGN + "/recipients", "Each send of the campaign and its latest outcome, a page at a time; with"
            " format=csv all of them as CSV (text/csv, streamed, a header row)", response=RecipientPage,
            errors=(400, 404, 503), query={**openapi.PAGING, "status": {"type": "string", "enum": list(RECIPIENT_STATUSES)},
                                           "format": {"type": "string", "enum": ["json", "csv"], "default": "json"}})
async def campaign_recipients(request: web.Request, campaigns: CampaignRepository, recipients: Recipients,
                              upstreams: Upstreams) -> web.StreamResponse:
    campaign_id = uuid_param(request)
    status = request.query.get("status") or None
    if status is not None and status not in RECIPIENT_STATUSES:
        raise Problem(400, "Invalid query", f"status must be one of {list(RECIPIENT_STATUSES)}",
                      errors=[{"path": "$.status", "message": "unknown status"}])
    kind = request.query.get("format", "json")
    if kind not in ("json", "csv"):
        raise Problem(400, "Invalid query", "format must be json or csv",
                      errors=[{"path": "$.format", "message": "unknown format"}])
    if kind == "csv":
        return await _recipients_csv(request, campaign_id, status, campaigns, recipients, upstreams)
    after, limit = page_request(request)
    items = await handlers.list_recipients(campaign_id, status, after, limit, campaigns, recipients, upstreams)
    next_cursor = _recipient_cursor(items[-1]) if len(items) == limit else None
    return json_response(RecipientPage(items=items, next_cursor=next_cursor))


def _recipient_cursor(last: RecipientOutcome) -> str:
    """The same shape as every cursor of the API (servicekit.http.page_request reads it)."""
    return base64.urlsafe_b64encode(f"{last.updated_at.isoformat()}|{last.send_id}".encode()).decode()


CSV_COLUMNS = ("send_id", "contact_id", "email", "step_index", "status", "attempt", "smtp_code", "smtp_message",
               "updated_at")


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (OWASP's CSV injection)."""
    text = value.isoformat() if isinstance(value, datetime) else "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _recipients_csv(request: web.Request, campaign_id: UUID, status: str | None, campaigns: CampaignRepository,
                          recipients: Recipients, upstreams: Upstreams) -> web.StreamResponse:
    await campaigns.get(campaign_id)  # a 404 before the answer starts
    answer = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="campaign-{campaign_id}-recipients.csv"',
    })
    await answer.prepare(request)
    after = None
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    while True:
        items = await handlers.list_recipients(campaign_id, status, after, 500, campaigns, recipients, upstreams)
        for item in items:
            row = item.model_dump()
            writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
        await answer.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        if len(items) < 500:
            break
        after = (items[-1].updated_at, items[-1].send_id)
    await answer.write_eof()
    return answer


@routes.get(CAMPAIGN + "/activity", "Sends (by outcome) and engagement (opens, clicks, unsubscribes) per minute or"
            " hour", response=Activity, errors=(400, 404),
            query={"bucket": {"type": "string", "enum": ["minute", "hour"], "default": "minute"}})
async def campaign_activity(request: web.Request, campaigns: CampaignRepository, recipients: Recipients) -> web.Response:
    campaign_id = uuid_param(request)
    bucket = request.query.get("bucket", "minute")
    if bucket not in ("minute", "hour"):
        raise Problem(400, "Invalid query", "bucket must be minute or hour",
                      errors=[{"path": "$.bucket", "message": "unknown bucket"}])
    return json_response(await handlers.campaign_activity(campaign_id, bucket, campaigns, recipients))


@routes.get("/api/status", "Each service's health, the scheduler's lag and the mailer's rate (a service that does"
            " not answer is down)", response=SystemStatus)
async def system_status(request: web.Request, settings: Settings, accounts: AccountRepository,
                        upstreams: Upstreams) -> web.Response:
    own = {**HEALTH.report(), **await gateway.health(settings, accounts)}
    return json_response(await handlers.report_status(own, upstreams))


@routes.get("/api/contacts/{id}/engagement", "What campaigns sent a contact, and its opens, clicks and unsubscribes"
            " (zeros for an id never sent to)", response=ContactEngagement, errors=(404,))
async def contact_engagement(request: web.Request, contact_history: ContactHistory) -> web.Response:
    # Served here, before the proxy of /api/contacts/* (gateway.declare): campaign-api owns
    # the sends and engagements, segment-svc the contacts.
    return json_response(await handlers.report_engagement(uuid_param(request), contact_history))


STEP = "/api/flows/{id}/steps/{index}"
STEP_INDEX = {"index": {"type": "integer", "minimum": 0, "maximum": 999_999}}


def _step_index(request: web.Request) -> int:
    raw = request.match_info["index"]
    if not raw.isdigit() or len(raw) > 6:
        raise Problem(404, "Step not found", f"{raw!r} is not a step index (0, 1, ...)")
    return int(raw)


@routes.post(STEP + "/render", "An email step rendered for a contact, as the mailer would send it", body=RenderRequest,
             response=RenderedEmail, errors=(400, 404, 413, 415, 422, 503), path_params=STEP_INDEX)
async def render_step(request: web.Request, upstreams: Upstreams) -> web.Response:
    flow_id, index = uuid_param(request), _step_index(request)
    ask = await read_json(request, RenderRequest)
    return json_response(await handlers.render_step(flow_id, index, ask.contact_id, upstreams))


@routes.post(STEP + "/test-send", "Send a test of an email step to up to 10 addresses (email.test, sent by the"
             " mailer)", body=TestSendRequest, response=TestSendAccepted, status=202,
             errors=(400, 404, 413, 415, 422, 503), path_params=STEP_INDEX)
async def send_test(request: web.Request, uow: Uow, upstreams: Upstreams) -> web.Response:
    flow_id, index = uuid_param(request), _step_index(request)
    ask = await read_json(request, TestSendRequest)
    session = request.get(gateway.SESSION)
    accepted = await handlers.send_test(flow_id, index, ask, session.email if session else None, uow, upstreams)
    return json_response(accepted, status=202)


# Sign-in of people (API keys stay for machines): a session cookie and its CSRF token.

def _secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


@routes.post("/api/session", "Sign in: a session cookie (HttpOnly, SameSite=Strict) and the CSRF token that every"
             " change made with it carries in X-CSRF-Token", body=Credentials, response=SessionView,
             errors=(400, 401, 413, 415, 422, 429))
async def sign_in(request: web.Request, settings: Settings, uow: Uow, accounts: AccountRepository,
                  passwords: Passwords, throttle: SignInThrottle) -> web.Response:
    credentials = await read_json(request, Credentials)
    session, token = await handlers.sign_in(credentials, request.remote or "", settings.session_hours, uow,
                                            accounts, passwords, throttle)
    answer = json_response(session)
    answer.set_cookie(gateway.SESSION_COOKIE, token, max_age=int(settings.session_hours * 3600), path="/",
                      httponly=True, samesite="Strict", secure=_secure(request))
    answer.headers["Cache-Control"] = "no-store"
    return answer


@routes.get("/api/session", "Who is signed in, and their CSRF token", response=SessionView, errors=(404,))
async def current_session(request: web.Request, settings: Settings, sessions: SessionRepository,
                          accounts: AccountRepository) -> web.Response:
    session = await handlers.session_of(request.cookies.get(gateway.SESSION_COOKIE), sessions)
    if session is None:
        if not settings.keys and not await accounts.any():
            raise Problem(404, "No sessions", "the API is open (no API_KEYS, no account): nothing to sign in to")
        raise Problem(401, "Not signed in", "sign in with POST /api/session")
    answer = json_response(session)
    answer.headers["Cache-Control"] = "no-store"
    return answer


@routes.delete("/api/session", "Sign out: the session ends and its cookie is cleared", status=204)
async def sign_out(request: web.Request, uow: Uow) -> web.Response:
    await handlers.sign_out(request.cookies.get(gateway.SESSION_COOKIE), uow)
    answer = web.Response(status=204)
    answer.del_cookie(gateway.SESSION_COOKIE, path="/")
    return answer


tracking.declare(routes)
docs_page.declare(routes)
gateway.declare(routes)
gateway.serve_app(routes)  # last: it answers every GET no other route does


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
    SignInRefused: lambda error: Problem(401, "Sign-in refused", "that email and password do not match an account"),
    TooManyAttempts: lambda error: Problem(429, "Too many sign-in attempts", str(error),
                                           headers={"Retry-After": str(max(1, round(error.retry_after)))}),
    FlowNotFound: lambda error: Problem(404, "Flow not found", f"no flow {error}"),
    StepNotFound: lambda error: Problem(404, "Step not found", str(error)),
    ContactNotFound: lambda error: Problem(
        422, "Contact not found", f"no contact {error}", errors=[{"path": "$.contact_id", "message": "no such contact"}]),
    TemplateNotRenderable: lambda error: Problem(
        422, "Template cannot render", f"{error.field}: {error.message}",
        errors=[{"path": f"$.{error.field}", "message": error.message}]),
}
