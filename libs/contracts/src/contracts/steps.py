"""Flow steps: what a flow is made of, and what a running campaign snapshots."""

import re
from datetime import time, timedelta
from functools import lru_cache
from typing import Annotated, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from contracts.templates import TemplateError, check_template

# A wait longer than a year is almost surely a typo (seconds for days); refuse it.
MAX_WAIT = timedelta(days=366)

# What one email's subject, html and text may weigh as the JSON they travel in (UTF-8;
# quotes, backslashes and control characters count as their escapes): a send.due carries
# them with its recipient in one Kafka message (contracts.codec.MESSAGE_BYTES says why the
# two always fit). Half a megabyte: five times what Gmail shows before it clips a message.
CONTENT_BYTES = 512 * 1024
# Every email of a flow together: campaign.activated carries them all, in one message.
FLOW_CONTENT_BYTES = 900_000
MAX_STEPS = 100  # of a flow


@lru_cache(maxsize=1024)  # the same content arrives with every send.due of a step
def content_bytes(subject: str, html: str, text: str) -> int:
    """The bytes of the three texts as JSON strings, quotes included."""
    return len(orjson.dumps(subject)) + len(orjson.dumps(html)) + len(orjson.dumps(text))


_HH_MM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _hh_mm(value):
    if isinstance(value, time):
        return value
    if isinstance(value, str) and _HH_MM.match(value):
        return time.fromisoformat(value)
    raise ValueError("use HH:MM, e.g. 09:30")


# A time of day as people write it: "09:30", both ways.
TimeOfDay = Annotated[
    time,
    BeforeValidator(_hh_mm),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _HH_MM.pattern, "examples": ["09:30"]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_TOGETHER = (f"subject, html and text together at most {CONTENT_BYTES:,} bytes as JSON (UTF-8; quotes,"
             " backslashes and control characters count as their escapes)")


class EmailContent(_Strict):
    """Subject, HTML and text of one email, as sandboxed Jinja2 templates: together at
    most 524,288 bytes as JSON (CONTENT_BYTES), so that any email fits one send.due with
    any recipient."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"minLength": 1}}},
        {"required": ["html"], "properties": {"html": {"minLength": 1}}},
    ]})

    subject: str = Field(min_length=1, max_length=998)
    html: str = Field(default="", max_length=CONTENT_BYTES, description=_TOGETHER)
    text: str = Field(default="", max_length=CONTENT_BYTES, description=_TOGETHER)

    @field_validator("subject", "html", "text")
    @classmethod
    def _parses(cls, source: str) -> str:
        try:
            check_template(source)
        except TemplateError as error:
            raise ValueError(str(error)) from None
        return source

    @model_validator(mode="after")
    def _has_a_body(self) -> "EmailContent":
        if not self.html and not self.text:
            raise ValueError("an email needs an html or a text body")
        if (size := self.size) > CONTENT_BYTES:
            raise ValueError(f"subject, html and text are {size:,} bytes as JSON: an email may have at most"
                             f" {CONTENT_BYTES:,}, to travel in one message with its recipient")
        return self

    @property
    def size(self) -> int:
        return content_bytes(self.subject, self.html, self.text)


class WaitConfig(_Strict):
    # Each bounded by the longest wait, so that no sum of them can overflow.
    days: int = Field(default=0, ge=0, le=MAX_WAIT.days)
    hours: int = Field(default=0, ge=0, le=MAX_WAIT.days * 24)
    minutes: int = Field(default=0, ge=0, le=MAX_WAIT.days * 24 * 60)
    seconds: int = Field(default=0, ge=0, le=int(MAX_WAIT.total_seconds()))

    @model_validator(mode="after")
    def _sane(self) -> "WaitConfig":
        total = self.elapsed + timedelta(days=self.days)
        if total <= timedelta(0):
            raise ValueError("a wait must last longer than zero")
        if total > MAX_WAIT:
            raise ValueError(f"a wait may last at most {MAX_WAIT.days} days")
        return self

    @property
    def elapsed(self) -> timedelta:
        """The part of the wait that is elapsed time (days are calendar days, see timeline)."""
        return timedelta(hours=self.hours, minutes=self.minutes, seconds=self.seconds)


class SendEmailStep(_Strict):
    type: Literal["SEND_EMAIL"]
    config: EmailContent


class WaitStep(_Strict):
    type: Literal["WAIT"]
    config: WaitConfig


Step = Annotated[SendEmailStep | WaitStep, Field(discriminator="type")]


def has_an_email(steps: list[SendEmailStep | WaitStep]) -> bool:
    return any(isinstance(step, SendEmailStep) for step in steps)


def flow_content_bytes(steps: list[SendEmailStep | WaitStep]) -> int:
    """What the emails of these steps weigh together (EmailContent.size each)."""
    return sum(step.config.size for step in steps if isinstance(step, SendEmailStep))


def omittable(schema: dict | None = None, **constraints):
    """A PATCH field that may be left out but not sent as null: it stays unset (None)
    when absent, and its schema shows no null default (plus what `schema` adds)."""

    def adjust(field_schema: dict) -> None:
        field_schema.pop("default", None)
        field_schema.update(schema or {})

    return Field(default=None, json_schema_extra=adjust, **constraints)
