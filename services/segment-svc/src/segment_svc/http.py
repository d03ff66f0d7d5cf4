"""HTTP adapter of segment-svc: `/api/contacts` and `/api/segments`."""

from aiohttp import web
from servicekit.http import (
    Problem,
    json_response,
    page_request,
    page_response,
    read_json,
    uuid_param,
)

from segment_svc.adapters.postgres import ContactRepository, SegmentRepository
from segment_svc.contacts import ContactDraft, ContactNotFound, ContactPatch, EmailTaken
from segment_svc.segments import SegmentDraft, SegmentNotFound

CONTACTS = web.AppKey("contacts", ContactRepository)
SEGMENTS = web.AppKey("segments", SegmentRepository)
routes = web.RouteTableDef()


@routes.post("/api/contacts")
async def create_contact(request: web.Request) -> web.Response:
    draft = await read_json(request, ContactDraft)
    return json_response(await request.app[CONTACTS].add(draft), status=201)


@routes.get("/api/contacts")
async def list_contacts(request: web.Request) -> web.Response:
    after, limit = page_request(request)
    return page_response(await request.app[CONTACTS].page(after, limit), limit)


@routes.get("/api/contacts/{id}")
async def get_contact(request: web.Request) -> web.Response:
    return json_response(await request.app[CONTACTS].get(uuid_param(request)))


@routes.patch("/api/contacts/{id}")
async def update_contact(request: web.Request) -> web.Response:
    contact_id = uuid_param(request)
    patch = await read_json(request, ContactPatch)
    return json_response(await request.app[CONTACTS].update(contact_id, patch))


@routes.delete("/api/contacts/{id}")
async def delete_contact(request: web.Request) -> web.Response:
    await request.app[CONTACTS].delete(uuid_param(request))
    return web.Response(status=204)


@routes.post("/api/segments")
async def create_segment(request: web.Request) -> web.Response:
    draft = await read_json(request, SegmentDraft)
    return json_response(await request.app[SEGMENTS].add(draft), status=201)


@routes.get("/api/segments")
async def list_segments(request: web.Request) -> web.Response:
    after, limit = page_request(request)
    return page_response(await request.app[SEGMENTS].page(after, limit), limit)


@routes.get("/api/segments/{id}")
async def get_segment(request: web.Request) -> web.Response:
    return json_response(await request.app[SEGMENTS].get(uuid_param(request)))


@routes.put("/api/segments/{id}")
async def replace_segment(request: web.Request) -> web.Response:
    segment_id = uuid_param(request)
    draft = await read_json(request, SegmentDraft)
    return json_response(await request.app[SEGMENTS].replace(segment_id, draft))


@routes.delete("/api/segments/{id}")
async def delete_segment(request: web.Request) -> web.Response:
    await request.app[SEGMENTS].delete(uuid_param(request))
    return web.Response(status=204)


@routes.get("/api/segments/{id}/preview")
async def preview_segment(request: web.Request) -> web.Response:
    segments = request.app[SEGMENTS]
    segment = await segments.get(uuid_param(request))
    return json_response(await segments.preview(segment.criteria))


ERRORS = {
    ContactNotFound: lambda error: Problem(404, "Contact not found", f"no contact {error}"),
    SegmentNotFound: lambda error: Problem(404, "Segment not found", f"no segment {error}"),
    EmailTaken: lambda error: Problem(
        409, "Email already used", f"a contact with {error} exists",
        errors=[{"path": "$.email", "message": "already used by another contact"}],
    ),
}
