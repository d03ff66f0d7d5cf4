"""Flows: a name and ordered steps, valid only with at least one email."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.steps import Step, has_an_email

MAX_STEPS = 100


class FlowNotFound(LookupError):
    pass


class FlowDraft(BaseModel):
    """What a client sends to create or replace a flow."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS, json_schema_extra={
        "contains": {"type": "object", "properties": {"type": {"const": "SEND_EMAIL"}}, "required": ["type"]}})

    @field_validator("steps")
    @classmethod
    def _sends_something(cls, steps: list) -> list:
        if not has_an_email(steps):
            raise ValueError("a flow needs at least one SEND_EMAIL step")
        return steps


class Flow(FlowDraft):
    id: UUID
    created_at: datetime
    updated_at: datetime
