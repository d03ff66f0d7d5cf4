"""HTTP adapter of segment-svc: `/api/contacts`, `/api/segments` and the send-time
suggestion, each route declared once with its OpenAPI operation."""

from aiohttp import web
from pydantic import ValidationError

from segment_svc import handlers
from segment_svc.contacts import (
    SEARCH_LENGTH,
    Contact,
    ContactDraft,
    ContactNotFound,
    ContactPatch,
    ContactTooLarge,
    EmailTaken,
    search_problem,
)
from segment_svc.imports import BadHeader, ImportReport, ReportJson
from segment_svc.segments import Preview, Segment, SegmentDraft, SegmentNotFound
from segment_svc.send_time import SendTimeSuggestion, SuggestionQuery
from servicekit.http import (
    Problem,
    invalid,
    json_response,
    page_request,
    page_response,
    read_json,
    uuid_param,
)
from servicekit.openapi import PAGING, page_of
from servicekit.routes import Routes

_KINDS = {"application/x-ndjson": "ndjson", "application/jsonl": "ndjson", "text/csv": "csv"}

routes = Routes("segment-svc")
CONTACT = "/api/contacts/{id}"

# Contacts are a resource (servicekit.routes.resource) whose list also searches: its five
# routes are declared here, the list with `q`.


@routes.post("/api/contacts", "Create a contact", body=ContactDraft, response=Contact, status=201,
             errors=(400, 409, 413, 415, 422))
async def create_contact(request: web.Request, audience: handlers.Audience) -> web.Response:
    return json_response(await audience.add(await read_json(request, ContactDraft)), status=201)


@routes.get("/api/contacts", "List contacts in the order they were created; with q, those whose email, first name,"
            " last name or full name starts with q (any case)", response=page_of(Contact), errors=(400,),
            query={**PAGING, "q": {"type": "string", "minLength": 1, "maxLength": SEARCH_LENGTH,
                                   "description": "the start of an email, a first or last name, or \"first last\";"
                                                  " any case, % and _ taken literally"}})
async def list_contacts(request: web.Request, contacts) -> web.Response:
    after, limit = page_request(request)
    q = request.query.get("q")
    if q is not None and (problem := search_problem(q)):
        raise Problem(400, "Invalid query", f"q {problem}", errors=[{"path": "$.q", "message": problem}])
    return page_response(await handlers.list_contacts(q, after, limit, contacts), limit)


@routes.get(CONTACT, "Get a contact", response=Contact, errors=(404,))
async def get_contact(request: web.Request, audience: handlers.Audience) -> web.Response:
    return json_response(await audience.get(uuid_param(request)))


@routes.patch(CONTACT, "Change a contact", body=ContactPatch, response=Contact, errors=(400, 404, 409, 413, 415, 422))
async def change_contact(request: web.Request, audience: handlers.Audience) -> web.Response:
    contact_id = uuid_param(request)
    return json_response(await audience.update(contact_id, await read_json(request, ContactPatch)))


@routes.delete(CONTACT, "Delete a contact", status=204, errors=(404,))
async def delete_contact(request: web.Request, audience: handlers.Audience) -> web.Response:
    await audience.delete(uuid_param(request))
    return web.Response(status=204)


routes.resource("/api/segments", "segment", "segments", Segment, SegmentDraft, SegmentDraft)


@routes.post("/api/contacts/import", "Create or update contacts by email from NDJSON or CSV",
             raw_body={kind: {"type": "string"} for kind in _KINDS}, response=ImportReport, errors=(415, 422))
async def import_contacts(request: web.Request, imports, settings) -> web.StreamResponse:
    kind = _KINDS.get(request.content_type)
    if kind is None:
        raise Problem(415, "Unsupported media type", f"send {' or '.join(_KINDS)}")
    upload = handlers.ContactUpload(kind, request.content.iter_chunked(16 * 1024))
    async with handlers.import_contacts(upload, imports, settings) as job:
        # Streamed after the commit: the rejections are read back page by page.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(ReportJson.head(job.inserted, job.updated, job.rejected))
        report = ReportJson()
        async for rejections in job.rejections():
            await response.write(report.rejections(rejections))
        await response.write(ReportJson.END)
        await response.write_eof()
        return response


@routes.get("/api/send-time-suggestion", "The best time of day to send to a segment, explained",
            response=SendTimeSuggestion, errors=(404, 422), query={
                "segment_id": {"type": "string", "format": "uuid"},
                "timezone": {"type": "string", "default": "UTC"},
                "default_time_of_day": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                        "default": "09:00"}})
async def send_time_suggestion(request: web.Request, segments, history) -> web.Response:
    try:
        query = SuggestionQuery.model_validate(dict(request.query))
    except ValidationError as error:
        raise invalid(error) from None
    return json_response(await handlers.suggest_send_time(query, segments, history))


@routes.get("/api/segments/{id}/preview", "How many contacts a segment matches, and some of them",
            response=Preview, errors=(404,))
async def preview_segment(request: web.Request, segments) -> web.Response:
    return json_response(await handlers.preview_segment(uuid_param(request), segments))


ERRORS = {
    BadHeader: lambda error: Problem(
        422, "Invalid CSV header", str(error), errors=[{"path": error.path, "message": str(error)}]
    ),
    ContactNotFound: lambda error: Problem(404, "Contact not found", f"no contact {error}"),
    SegmentNotFound: lambda error: Problem(404, "Segment not found", f"no segment {error}"),
    ContactTooLarge: lambda error: Problem(
        422, "Contact too large", str(error), errors=[{"path": "$.attributes", "message": str(error)}],
    ),
    EmailTaken: lambda error: Problem(
        409, "Email already used", f"a contact with {error} exists",
        errors=[{"path": "$.email", "message": "already used by another contact"}],
    ),
}
