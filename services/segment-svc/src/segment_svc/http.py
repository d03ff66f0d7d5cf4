"""HTTP adapter of segment-svc: `/api/contacts` and `/api/segments`."""

import asyncio
import json
from collections import deque
from datetime import time
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts.steps import TimeOfDay
from segment_svc.adapters.imports import ContactImport, ContactImports, Prepared, prepare
from segment_svc.adapters.postgres import ContactRepository, EngagementHistory, SegmentRepository
from segment_svc.contacts import (
    Contact,
    ContactDraft,
    ContactNotFound,
    ContactPatch,
    ContactTooLarge,
    EmailTaken,
    known_zone,
)
from segment_svc.imports import BadHeader, Batches, Reader
from segment_svc.segments import Preview, Segment, SegmentDraft, SegmentNotFound
from segment_svc.send_time import SendTimeSuggestion, suggest
from servicekit import openapi
from servicekit.http import Problem, invalid, json_response, resource_routes, uuid_param

CONTACTS = web.AppKey("contacts", ContactRepository)
SEGMENTS = web.AppKey("segments", SegmentRepository)
IMPORTS = web.AppKey("imports", ContactImports)
IMPORT_BATCH = web.AppKey("import_batch", int)
HISTORY = web.AppKey("history", EngagementHistory)
_KINDS = {"application/x-ndjson": "ndjson", "application/jsonl": "ndjson", "text/csv": "csv"}


async def preview_segment(request: web.Request) -> web.Response:
    segments = request.app[SEGMENTS]
    segment = await segments.get(uuid_param(request))
    return json_response(await segments.preview(segment.criteria))


class RejectedLine(BaseModel):
    line: int
    reason: str


class ImportReport(BaseModel):
    """What an import did; `rejections` lists every rejected line, in order."""

    inserted: int
    updated: int
    rejected: int
    rejections: list[RejectedLine]


async def import_contacts(request: web.Request) -> web.StreamResponse:
    """Reads the upload as it arrives and upserts it in batches while the next is parsed;
    commits once at the end, then streams the report (its rejections read back by cursor)."""
    kind = _KINDS.get(request.content_type)
    if kind is None:
        raise Problem(415, "Unsupported media type", f"send {' or '.join(_KINDS)}")
    async with request.app[IMPORTS].open() as job:
        async with job.transaction():
            await _read_and_store(request, job, Reader(kind), Batches(request.app[IMPORT_BATCH]))
        return await _report(request, job)


async def _read_and_store(request: web.Request, job: ContactImport, reader: Reader, batches: Batches) -> None:
    # Batches prepared and waiting for the database, each stored after the one before:
    # two may wait, so that the database, the slower side, always has the next at hand.
    storing: deque[asyncio.Task] = deque()

    async def store_after(before: asyncio.Task | None, ready: Prepared, rejections: list) -> None:
        if before is not None:
            await before
        await job.store(ready, rejections)

    async def hand_over(batch) -> None:
        rows, rejections = batch
        ready = prepare(rows)
        if len(storing) == _WAITING_BATCHES:
            await storing.popleft()
        storing.append(asyncio.create_task(store_after(storing[-1] if storing else None, ready, rejections)))

    try:
        async for chunk in request.content.iter_chunked(16 * 1024):
            for row in reader.feed(chunk):
                if batch := batches.add(row):
                    await hand_over(batch)
            # Parsing holds the loop: between small chunks it feeds the COPY under way,
            # which the database would otherwise wait for.
            await asyncio.sleep(0)
        for row in reader.close():
            if batch := batches.add(row):
                await hand_over(batch)
        await hand_over(batches.take())
        while storing:
            await storing.popleft()
    finally:
        for task in storing:  # the connection is busy until they end
            task.cancel()
        await asyncio.gather(*storing, return_exceptions=True)


_WAITING_BATCHES = 2


async def _report(request: web.Request, job: ContactImport) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    head = {"inserted": job.inserted, "updated": job.updated, "rejected": job.rejected}
    await response.write(json.dumps(head)[:-1].encode() + b', "rejections": [')
    separator = ""
    async for rejections in job.rejections():
        text = ",".join(json.dumps({"line": r.line, "reason": r.reason}) for r in rejections)
        await response.write(f"{separator}{text}".encode())
        separator = ","
    await response.write(b"]}")
    await response.write_eof()
    return response


async def send_time_suggestion(request: web.Request) -> web.Response:
    """The segment's best time of day to send, with what it rests on (see send_time.py)."""
    query = SuggestionQuery.model_validate_query(request.query)
    segment = await request.app[SEGMENTS].get(query.segment_id)
    evidence = await request.app[HISTORY].evidence(segment.criteria, query.timezone)
    return json_response(suggest(evidence, query.default_time_of_day))


class SuggestionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: UUID
    timezone: str = Field(default="UTC", description="the campaign's zone: recipients without one of their own")
    default_time_of_day: TimeOfDay = Field(default=time(9, 0), description="the campaign's start time, to compare with")

    _zone = field_validator("timezone")(known_zone)

    @classmethod
    def model_validate_query(cls, query) -> "SuggestionQuery":
        try:
            return cls.model_validate(dict(query))
        except ValidationError as error:
            raise invalid(error) from None


OPERATIONS = [
    *openapi.resource_operations("/api/contacts", "contact", Contact, ContactDraft, ContactPatch, "PATCH",
                                 conflicts=(409,)),
    *openapi.resource_operations("/api/segments", "segment", Segment, SegmentDraft, SegmentDraft),
    openapi.Operation("POST", "/api/contacts/import", "Create or update contacts by email from NDJSON or CSV",
                      raw_body={kind: {"type": "string"} for kind in _KINDS}, response=ImportReport,
                      errors=(415, 422)),
    openapi.Operation("GET", "/api/send-time-suggestion", "The best time of day to send to a segment, explained",
                      response=SendTimeSuggestion, errors=(404, 422), query={
                          "segment_id": {"type": "string", "format": "uuid"},
                          "timezone": {"type": "string", "default": "UTC"},
                          "default_time_of_day": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                                  "default": "09:00"}}),
    openapi.Operation("GET", "/api/segments/{id}/preview", "How many contacts a segment matches, and some of them",
                      response=Preview, errors=(404,)),
]
routes = [
    web.post("/api/contacts/import", import_contacts),
    *resource_routes("/api/contacts", CONTACTS, create=ContactDraft, update=ContactPatch, update_method="PATCH"),
    *resource_routes("/api/segments", SEGMENTS, create=SegmentDraft, update=SegmentDraft),
    web.get("/api/segments/{id}/preview", preview_segment),
    web.get("/api/send-time-suggestion", send_time_suggestion),
    openapi.route(OPERATIONS, "segment-svc"),
]

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
