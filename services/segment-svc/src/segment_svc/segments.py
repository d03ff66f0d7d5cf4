"""Segments: a name and criteria, and what a preview of one shows."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from segment_svc.criteria import Group


class SegmentNotFound(LookupError):
    pass


class SegmentDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    criteria: Group


class Segment(SegmentDraft):
    id: UUID
    created_at: datetime
    updated_at: datetime


class Preview(BaseModel):
    count: int
    opted_in: int
    sample: list[dict]
