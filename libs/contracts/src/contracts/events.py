"""Every event of the system. One topic carries one event type; `codec` maps between them.

Events are frozen and refuse unknown fields: a producer that sends something we do not
understand gets its message in `<topic>.dlq`, not silently half-read.
"""

import hashlib
import random
from datetime import UTC, date, datetime, time
from typing import Any, ClassVar, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from contracts import topics
from contracts.enums import CampaignStatus, DeliveryStatus, EngagementKind
from contracts.steps import EmailContent, Step

_SEND_NAMESPACE = uuid5(NAMESPACE_URL, "urn:campaigns:send")


def new_event_id() -> UUID:
    """A random (version 4) id. Event ids must be unique, not unguessable, so the fast
    generator serves; os.urandom per event was a tenth of the scheduler's time."""
    return UUID(int=(_random.getrandbits(128) & _V4_CLEAR) | _V4_SET)


def uuid_texts(count: int, millis: int | None = None) -> list[str]:
    """`count` UUIDs as text, from one draw of random bytes, for bulk writers that put ids
    straight into text: version 4 (random), or with `millis` version 7 (RFC 9562: those
    milliseconds since 1970, then 74 random bits; all alike in their first 48 bits)."""
    text = _random.randbytes(16 * count).hex()
    variant = _VARIANT
    if millis is None:
        return [f"{text[i:i + 8]}-{text[i + 8:i + 12]}-4{text[i + 13:i + 16]}-{variant[text[i + 16]]}"
                f"{text[i + 17:i + 20]}-{text[i + 20:i + 32]}" for i in range(0, 32 * count, 32)]
    head = f"{millis:012x}"
    head = f"{head[:8]}-{head[8:]}-7"
    return [f"{head}{text[i + 13:i + 16]}-{variant[text[i + 16]]}{text[i + 17:i + 20]}-{text[i + 20:i + 32]}"
            for i in range(0, 32 * count, 32)]


# The high bits of the fourth group are 10 (RFC 9562's variant); a random hex digit keeps its low two.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_random = random.Random()
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def now_utc() -> datetime:
    return datetime.now(UTC)


class SendIds:
    """The send ids of one run: uuid5 over "run:contact:step", deterministic, so the same
    run, contact and step always make the same send. The run's part is encoded once."""

    def __init__(self, run_id: UUID) -> None:
        self._prefix = _SEND_NAMESPACE.bytes + f"{run_id}:".encode()

    def __call__(self, contact_id: UUID, step_index: int) -> UUID:
        digest = hashlib.sha1(self._prefix + f"{contact_id}:{step_index}".encode(), usedforsecurity=False).digest()
        return UUID(bytes=digest[:16], version=5)


def send_id_for(run_id: UUID, contact_id: UUID, step_index: int) -> UUID:
    return SendIds(run_id)(contact_id, step_index)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: ClassVar[str]
    key_field: ClassVar[str]

    event_id: UUID = Field(default_factory=new_event_id)
    version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=now_utc)

    @property
    def key(self) -> str:
        return str(getattr(self, self.key_field))

    @classmethod
    def event_type_name(cls) -> str:
        return cls.model_fields["event_type"].default


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    contact_id: UUID
    email: str
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    send_hour: int | None = Field(
        default=None, ge=0, le=23,
        description="with optimize_send_time: the recipient's best hour of day, in their own zone (UTC without one)",
    )
    # The contact's consent as evaluated, and the contact's change sequence then: the mailer
    # takes the newer of this and its contact.changed cache (ContactChanged.change_seq).
    marketing_opt_in: bool | None = None
    change_seq: int | None = Field(default=None, ge=0)

    def template_fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=_NOT_TEMPLATE_FIELDS)


_NOT_TEMPLATE_FIELDS = frozenset({"send_hour", "marketing_opt_in", "change_seq"})


class CampaignActivated(Event):
    topic = topics.CAMPAIGN_ACTIVATED
    key_field = "campaign_id"
    event_type: Literal["campaign.activated"] = "campaign.activated"

    campaign_id: UUID
    run_id: UUID
    segment_id: UUID
    steps: list[Step]
    start_date: date
    start_time_of_day: time
    timezone: str
    send_in_recipient_timezone: bool = False
    optimize_send_time: bool = False  # each recipient at their best hour within 24 hours of start_at
    start_at: AwareDatetime  # step 1 in the campaign's timezone, UTC; now if that was past
    activated_at: AwareDatetime
    status_seq: int | None = Field(default=None, ge=1, description="the campaign's status sequence at activation")


class SegmentEvaluated(Event):
    topic = topics.SEGMENT_EVALUATED
    key_field = "run_id"
    event_type: Literal["segment.evaluated"] = "segment.evaluated"

    run_id: UUID
    campaign_id: UUID
    batch_no: int = Field(ge=0)
    recipients: list[Recipient]
    is_last: bool
    total_matched: int | None = Field(default=None, ge=0)  # on the last batch
    opted_in_matched: int | None = Field(default=None, ge=0)  # on the last batch


class SendDue(Event):
    topic = topics.SEND_DUE
    key_field = "contact_id"
    event_type: Literal["send.due"] = "send.due"

    send_id: UUID
    campaign_id: UUID
    run_id: UUID
    step_index: int = Field(ge=0)
    recipient: Recipient
    content: EmailContent
    due_at: AwareDatetime
    attempt: int = Field(default=1, ge=1)

    @property
    def contact_id(self) -> UUID:
        return self.recipient.contact_id


class EmailStatus(Event):
    topic = topics.EMAIL_STATUS
    key_field = "campaign_id"
    event_type: Literal["email.status"] = "email.status"

    send_id: UUID
    campaign_id: UUID
    run_id: UUID
    step_index: int = Field(ge=0)
    contact_id: UUID
    status: DeliveryStatus
    attempt: int = Field(ge=1)
    smtp_code: int | None = None
    smtp_message: str | None = None
    retry_at: AwareDatetime | None = None


class CampaignStatusChanged(Event):
    topic = topics.CAMPAIGN_STATUS
    key_field = "campaign_id"
    event_type: Literal["campaign.status"] = "campaign.status"

    campaign_id: UUID
    run_id: UUID | None = None
    status: CampaignStatus
    previous: CampaignStatus
    # Counts the campaign's status changes (the draft is 1): of two states of a campaign,
    # the one with the higher sequence is the newer, whatever order they arrive in.
    status_seq: int | None = Field(default=None, ge=1)


class CampaignScheduled(Event):
    topic = topics.CAMPAIGN_SCHEDULED
    key_field = "campaign_id"
    event_type: Literal["campaign.scheduled"] = "campaign.scheduled"

    campaign_id: UUID
    run_id: UUID
    recipients: int = Field(ge=0)
    sends: int = Field(ge=0)


class ContactUpserted(Event):
    """Inbound from other systems: create or update a contact by email."""

    topic = topics.CONTACT_UPSERTED
    key_field = "email"
    event_type: Literal["contact.upserted"] = "contact.upserted"

    email: EmailStr
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    marketing_opt_in: bool | None = None
    attributes: dict[str, Any] | None = None


class ContactChanged(Event):
    """Compacted by contact_id. A deleted contact travels as a tombstone (no value)."""

    topic = topics.CONTACT_CHANGED
    key_field = "contact_id"
    event_type: Literal["contact.changed"] = "contact.changed"

    contact_id: UUID
    email: str | None = None
    marketing_opt_in: bool = False
    deleted: bool = False
    # The contact's change sequence: 0 as created, higher after each change. Of two states
    # of a contact (this, or a recipient of segment.evaluated), the higher is the newer.
    change_seq: int | None = Field(default=None, ge=0)


class EmailEngagement(Event):
    topic = topics.EMAIL_ENGAGEMENT
    key_field = "campaign_id"
    event_type: Literal["email.engagement"] = "email.engagement"

    campaign_id: UUID
    run_id: UUID
    send_id: UUID
    contact_id: UUID
    step_index: int = Field(ge=0)
    kind: EngagementKind
    url: str | None = None
    machine: bool = False  # an open by a prefetching proxy, kept out of engagement figures


class EmailTest(Event):
    """A test of one email step, asked for in the web app: the mailer sends it to each address
    in `to`, rendered for `recipient` as a real send of the step would be, with the subject
    prefixed "[Test] ". No ledger, no consent, no tracking links, no email.status: a test is
    not a send of a campaign."""

    topic = topics.EMAIL_TEST
    key_field = "test_id"
    event_type: Literal["email.test"] = "email.test"

    test_id: UUID
    flow_id: UUID
    step_index: int = Field(ge=0)
    to: list[EmailStr] = Field(min_length=1, max_length=10)
    recipient: Recipient  # the contact it is rendered as (a blank one without contact_id given)
    content: EmailContent  # the step's templates, as saved
    requested_by: str | None = None  # the signed-in person's email; None for an API key


EVENT_TYPES: tuple[type[Event], ...] = (
    CampaignActivated,
    SegmentEvaluated,
    SendDue,
    EmailStatus,
    CampaignStatusChanged,
    CampaignScheduled,
    ContactUpserted,
    ContactChanged,
    EmailEngagement,
    EmailTest,
)
