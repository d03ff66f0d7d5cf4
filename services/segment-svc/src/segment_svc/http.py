"""HTTP adapter of segment-svc: `/api/contacts` and `/api/segments`."""

from aiohttp import web

from segment_svc.adapters.postgres import ContactRepository, SegmentRepository
from segment_svc.contacts import Contact, ContactDraft, ContactNotFound, ContactPatch, EmailTaken
from segment_svc.segments import Preview, Segment, SegmentDraft, SegmentNotFound
from servicekit import openapi
from servicekit.http import Problem, json_response, resource_routes, uuid_param

CONTACTS = web.AppKey("contacts", ContactRepository)
SEGMENTS = web.AppKey("segments", SegmentRepository)


async def preview_segment(request: web.Request) -> web.Response:
    segments = request.app[SEGMENTS]
    segment = await segments.get(uuid_param(request))
    return json_response(await segments.preview(segment.criteria))


OPERATIONS = [
    *openapi.resource_operations("/api/contacts", "contact", Contact, ContactDraft, ContactPatch, "PATCH",
                                 conflicts=(409,)),
    *openapi.resource_operations("/api/segments", "segment", Segment, SegmentDraft, SegmentDraft),
    openapi.Operation("GET", "/api/segments/{id}/preview", "How many contacts a segment matches, and some of them",
                      response=Preview, errors=(404,)),
]
routes = [
    *resource_routes("/api/contacts", CONTACTS, create=ContactDraft, update=ContactPatch, update_method="PATCH"),
    *resource_routes("/api/segments", SEGMENTS, create=SegmentDraft, update=SegmentDraft),
    web.get("/api/segments/{id}/preview", preview_segment),
    openapi.route(OPERATIONS, "segment-svc"),
]

ERRORS = {
    ContactNotFound: lambda error: Problem(404, "Contact not found", f"no contact {error}"),
    SegmentNotFound: lambda error: Problem(404, "Segment not found", f"no segment {error}"),
    EmailTaken: lambda error: Problem(
        409, "Email already used", f"a contact with {error} exists",
        errors=[{"path": "$.email", "message": "already used by another contact"}],
    ),
}
