"""Flows: a name and ordered steps, valid only with at least one email."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.steps import (
    CONTENT_BYTES,
    FLOW_CONTENT_BYTES,
    MAX_STEPS,
    Step,
    flow_content_bytes,
    has_an_email,
)


class FlowNotFound(LookupError):
    pass


class FlowDraft(BaseModel):
    """What a client sends to create or replace a flow."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    steps: list[Step] = Field(
        min_length=1, max_length=MAX_STEPS,
        description=f"each email at most {CONTENT_BYTES:,} bytes as JSON, all of them together at most"
                    f" {FLOW_CONTENT_BYTES:,}"
                    " (a running campaign carries its flow in one Kafka message)",
        json_schema_extra={
            "contains": {"type": "object", "properties": {"type": {"const": "SEND_EMAIL"}}, "required": ["type"]}})

    @field_validator("steps")
    @classmethod
    def _sends_something(cls, steps: list) -> list:
        if not has_an_email(steps):
            raise ValueError("a flow needs at least one SEND_EMAIL step")
        if (size := flow_content_bytes(steps)) > FLOW_CONTENT_BYTES:
            raise ValueError(f"the flow's emails are {size:,} bytes as JSON together: a flow may have at most"
                             f" {FLOW_CONTENT_BYTES:,}, to travel in one message when its campaign starts")
        return steps


class Flow(FlowDraft):
    id: UUID
    created_at: datetime
    updated_at: datetime
