"""Campaigns and their lifecycle. Pure: the handlers ask it what is allowed."""

import hashlib
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    ValidationError,
    computed_field,
    field_validator,
)

from contracts.enums import CampaignStatus
from contracts.steps import EmailContent, SendEmailStep, TimeOfDay, omittable
from contracts.timeline import PlannedSend, is_known_zone, plan_sends

# Which status may follow which, through PUT /status (completion after execution is the
# system's, from active; a person completes a paused campaign).
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.ACTIVE}),
    CampaignStatus.ACTIVE: frozenset({CampaignStatus.PAUSED}),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.ACTIVE, CampaignStatus.COMPLETED}),
    CampaignStatus.COMPLETED: frozenset(),
}


class CampaignNotFound(LookupError):
    pass


class SegmentNotFound(LookupError):
    pass


class UpstreamUnavailable(RuntimeError):
    """segment-svc or flow-engine did not answer."""


class InvalidTransition(Exception):
    def __init__(self, current: CampaignStatus, target: CampaignStatus) -> None:
        super().__init__(f"cannot go from {current} to {target}")
        self.current, self.target = current, target

    @property
    def allowed(self) -> list[str]:
        return sorted(TRANSITIONS[self.current])


class NotEditable(Exception):
    def __init__(self, current: CampaignStatus) -> None:
        super().__init__(f"only drafts can be changed; this campaign is {current}")
        self.current = current


class NothingToSend(ValueError):
    """A campaign with neither a flow nor content cannot be activated."""


class InvalidDraft(ValueError):
    """A patch that leaves the draft invalid (the fields it names, by their path)."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(str(error))
        self.error = error


class ChangedDuringActivation(Exception):
    """The draft was edited again and again while its activation read its flow."""


def check_transition(current: CampaignStatus, target: CampaignStatus) -> None:
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(current, target)


class CampaignDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    segment_id: UUID
    flow_id: UUID | None = None
    content: EmailContent | None = None
    start_date: date
    start_time_of_day: TimeOfDay
    timezone: str = "UTC"
    send_in_recipient_timezone: StrictBool = False
    optimize_send_time: StrictBool = Field(
        default=False, description="send each recipient at their own best hour (from their opens and clicks),"
                                   " within 24 hours of the scheduled start; see /api/send-time-suggestion")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not is_known_zone(value):
            raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Paris)")
        return value


class CampaignPatch(BaseModel):
    """PATCH: the fields sent replace the draft's; the result is validated as a draft."""

    model_config = ConfigDict(extra="forbid")

    # Fields a draft must have cannot be set to null; flow_id and content can (removed).
    name: str = omittable()
    description: str = omittable()
    segment_id: UUID = omittable()
    flow_id: UUID | None = None
    content: EmailContent | None = None
    start_date: date = omittable()
    start_time_of_day: TimeOfDay = omittable()
    timezone: str = omittable()
    send_in_recipient_timezone: StrictBool = omittable()
    optimize_send_time: StrictBool = omittable()


class Campaign(CampaignDraft):
    id: UUID
    status: CampaignStatus
    warnings: list[str] = Field(default_factory=list)
    run_id: UUID | None = None
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None = None
    completed_at: datetime | None = None

    def patched(self, patch: CampaignPatch) -> CampaignDraft:
        """The draft with the patch's fields replacing its own, validated as a whole."""
        fields = self.model_dump(include=set(CampaignDraft.model_fields)) | patch.model_dump(exclude_unset=True)
        try:
            return CampaignDraft.model_validate(fields)
        except ValidationError as error:
            raise InvalidDraft(error) from None

    def steps_or_content(self, flow_steps: list | None) -> list:
        """What activation snapshots: the flow's steps, else one email of the content."""
        if flow_steps:
            return flow_steps
        if self.content is not None:
            return [SendEmailStep(type="SEND_EMAIL", config=self.content)]
        raise NothingToSend("the campaign has neither a flow nor content")

    def plan(self, steps: list, now: datetime) -> list[PlannedSend]:
        return plan_sends(steps, self.start_date, self.start_time_of_day, self.timezone, now)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CampaignStatus


class StatusEntry(BaseModel):
    previous: CampaignStatus | None
    status: CampaignStatus
    at: datetime


class CampaignDetail(Campaign):
    status_history: list[StatusEntry]


class Figures(BaseModel):
    """What happened to a set of sends, and what recipients did with them. Opens and clicks
    are unique (sends opened or clicked at least once), machine opens excluded."""

    sent: int = 0
    failed: int = 0
    skipped_no_consent: int = 0
    deferred: int = Field(default=0, description="sends waiting for a retry (none once the campaign is completed: "
                                                 "they count in `cancelled`)")
    held: int = Field(default=0, description="sends held back while the campaign is paused, due again on resume "
                                             "(none once the campaign is completed: they count in `cancelled`)")
    cancelled: int = Field(default=0, description="sends that will never be made: the campaign was completed first")
    opens: int = 0
    clicks: int = 0
    unsubscribes: int = 0
    machine_opens: int = Field(default=0, description="opens by prefetching proxies and scanners, not counted in opens")

    @computed_field
    def open_rate(self) -> float | None:
        return _rate(self.opens, self.sent)

    @computed_field
    def click_rate(self) -> float | None:
        return _rate(self.clicks, self.sent)

    @computed_field
    def click_to_open_rate(self) -> float | None:
        return _rate(self.clicks, self.opens)

    @computed_field
    def unsubscribe_rate(self) -> float | None:
        return _rate(self.unsubscribes, self.sent)

    @computed_field
    def failure_rate(self) -> float | None:
        return _rate(self.failed, self.sent + self.failed)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class StepStats(Figures):
    step_index: int


class CampaignStats(Figures):
    campaign_id: UUID
    status: CampaignStatus
    targeted: int | None = Field(description="recipients the segment matched; null before scheduling")
    scheduled: int | None = Field(description="sends scheduled; null before scheduling")
    not_yet_sent: int | None = Field(
        description="sends scheduled and not yet answered by the mailer (not yet due, or on their way); at any "
                    "moment scheduled = sent + failed + skipped_no_consent + cancelled + deferred + held + not_yet_sent")
    steps: list[StepStats]


COUNTERS = tuple(Figures.model_fields)  # the columns of campaign_api.step_stats
# The counter each kind of engagement adds to.
ENGAGEMENT_COUNTERS = {"open": "opens", "machine_open": "machine_opens", "click": "clicks", "unsubscribe": "unsubscribes"}


def latest_per_send(events) -> dict[UUID, Any]:
    """Of several email.status events for one send in a batch, the one that says most:
    the highest attempt, and at one attempt a final status over `deferred`."""
    latest: dict[UUID, Any] = {}
    for event in events:
        known = latest.get(event.send_id)
        if known is None or (event.attempt, event.status.is_terminal) > (known.attempt, known.status.is_terminal):
            latest[event.send_id] = event
    return latest


def counter_changes(changed, previous: dict[UUID, str]) -> dict[tuple[UUID, int], dict[str, int]]:
    """Per step, what the sends whose status changed add to each status counter (a send
    leaving `deferred` takes one from it)."""
    changes: dict[tuple[UUID, int], dict[str, int]] = {}
    for row in changed:
        counts = changes.setdefault((row["campaign_id"], row["step_index"]), {})
        counts[row["status"]] = counts.get(row["status"], 0) + 1
        if (before := previous.get(row["send_id"])) is not None:
            counts[before] = counts.get(before, 0) - 1
    return changes


def campaign_stats(campaign_id: UUID, status: CampaignStatus, targeted: int | None, scheduled: int | None,
                   steps: list[StepStats]) -> CampaignStats:
    if status is CampaignStatus.COMPLETED:
        # Completing cancels every send not yet made (the scheduler's pending ones, the
        # mailer's held and deferred ones): each step's sends are its recipients'.
        steps = [step.model_copy(update={
            "deferred": 0, "held": 0,
            "cancelled": max(0, targeted - step.sent - step.failed - step.skipped_no_consent) if targeted else 0,
        }) for step in steps]
    totals = {name: sum(getattr(step, name) for step in steps) for name in COUNTERS}
    if status is CampaignStatus.COMPLETED:
        totals["cancelled"] = max(0, (scheduled or 0) - totals["sent"] - totals["failed"]
                                  - totals["skipped_no_consent"])
    not_yet_sent = None if scheduled is None else scheduled - sum(totals[name] for name in _OUTCOMES)
    return CampaignStats(campaign_id=campaign_id, status=status, targeted=targeted, scheduled=scheduled,
                         not_yet_sent=not_yet_sent, steps=steps, **totals)


# The counters that say where each scheduled send is: with not_yet_sent, they add up to scheduled.
_OUTCOMES = ("sent", "failed", "skipped_no_consent", "cancelled", "deferred", "held")


class PlannedSendView(BaseModel):
    step_index: int
    utc: datetime
    local: datetime


class SchedulePreview(BaseModel):
    campaign_id: UUID
    timezone: str
    sends: list[PlannedSendView]


# People who sign in (API keys stay for machines) and their sessions.

class Credentials(BaseModel):
    """POST /api/session."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class NewAccount(BaseModel):
    """An account as `python -m campaign_api.accounts add` makes it."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=12, max_length=1024, description="at least 12 characters")


class SessionView(BaseModel):
    """Who is signed in, and the token every change of theirs carries in X-CSRF-Token."""

    email: str
    csrf_token: str


class Account(BaseModel):
    id: UUID
    email: str
    password_hash: str


class SignInRefused(Exception):
    """Unknown email or wrong password: the same answer for both."""


class AccountExists(ValueError):
    pass


# The report's recipients and activity, the status page, a step rendered for a contact.

class RecipientOutcome(BaseModel):
    send_id: UUID
    contact_id: UUID | None = Field(description="null for sends recorded before contacts were kept")
    email: str | None = Field(description="the contact's address now; null when the contact is gone")
    step_index: int
    status: str
    attempt: int
    smtp_code: int | None = None
    smtp_message: str | None = None
    updated_at: datetime


class RecipientPage(BaseModel):
    items: list[RecipientOutcome]
    next_cursor: str | None = None


RECIPIENT_STATUSES = ("sent", "failed", "skipped_no_consent", "deferred", "held", "cancelled")


class ActivityBucket(BaseModel):
    at: datetime
    sent: int = 0
    failed: int = 0
    opens: int = 0
    clicks: int = 0
    unsubscribes: int = 0


class Activity(BaseModel):
    campaign_id: UUID
    bucket: Literal["minute", "hour"]
    buckets: list[ActivityBucket]


RECENT_ENGAGEMENTS = 20


class EngagementEvent(BaseModel):
    kind: Literal["open", "click", "unsubscribe"]
    campaign_id: UUID
    step_index: int
    url: str | None = Field(description="the link clicked; null for an open or an unsubscribe")
    at: datetime


class ContactEngagement(BaseModel):
    """What campaigns sent a contact and what the contact did with it: each send's latest
    outcome, each send's first open, click and unsubscribe (machine opens left out)."""

    contact_id: UUID
    sent: int
    failed: int
    opens: int
    clicks: int
    unsubscribes: int
    last_engaged_at: datetime | None
    recent: list[EngagementEvent] = Field(description=f"the last {RECENT_ENGAGEMENTS}, newest first")


def merge_activity(sends: list[dict], engagements: list[dict]) -> list[ActivityBucket]:
    """Sends per bucket (by outcome) and engagements per bucket (by kind), one row a bucket,
    in time order; machine opens are not opens."""
    buckets: dict[datetime, dict[str, int]] = {}
    for row in sends:
        if row["status"] in ("sent", "failed"):
            buckets.setdefault(row["at"], {})[row["status"]] = row["n"]
    names = {"open": "opens", "click": "clicks", "unsubscribe": "unsubscribes"}
    for row in engagements:
        if row["kind"] in names:
            counts = buckets.setdefault(row["at"], {})
            counts[names[row["kind"]]] = counts.get(names[row["kind"]], 0) + row["n"]
    return [ActivityBucket(at=at, **counts) for at, counts in sorted(buckets.items())]


class ServiceHealth(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "down"]


class SchedulerFigures(BaseModel):
    lag_seconds: float | None = None
    in_flight: int | None = None


class MailerFigures(BaseModel):
    emails_per_second: float | None = None


class SystemStatus(BaseModel):
    services: dict[str, ServiceHealth]
    scheduler: SchedulerFigures
    mailer: MailerFigures


def system_status(healths: dict[str, dict | None]) -> SystemStatus:
    """Each service's /healthz answer (None: it did not answer) read into the status page."""
    services = {}
    for name, health in healths.items():
        if health is None:
            services[name] = ServiceHealth(status="down")
        else:
            state = health.get("status") if health.get("status") in ("ok", "degraded") else "degraded"
            services[name] = ServiceHealth(**{**health, "status": state})
    scheduler, mailer = healths.get("scheduler") or {}, healths.get("mailer") or {}
    return SystemStatus(
        services=services,
        scheduler=SchedulerFigures(lag_seconds=_number(scheduler.get("lag_seconds")),
                                   in_flight=_whole(scheduler.get("in_flight"))),
        mailer=MailerFigures(emails_per_second=_number(mailer.get("emails_per_second"))),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: UUID


class RenderedEmail(BaseModel):
    subject: str
    html: str
    text: str


MAX_TEST_RECIPIENTS = 10


class TestSendRequest(BaseModel):
    __test__ = False  # not a test class, whatever pytest thinks of its name
    model_config = ConfigDict(extra="forbid")

    to: list[EmailStr] = Field(min_length=1, max_length=MAX_TEST_RECIPIENTS,
                               description=f"at most {MAX_TEST_RECIPIENTS} addresses")
    contact_id: UUID | None = Field(default=None, description="render as this contact; none: as a blank contact")


class TestSendAccepted(BaseModel):
    __test__ = False
    test_id: UUID
    to: list[str]


class StepNotFound(LookupError):
    """The flow has no such step, or it is not an email."""


class ContactNotFound(LookupError):
    pass


class FlowNotFound(LookupError):
    pass


class TemplateNotRenderable(ValueError):
    """A template that cannot render for a contact, and which of the step's fields it is."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def session_key(token: str) -> bytes:
    """What the sessions table keeps of a cookie's token: its SHA-256."""
    return hashlib.sha256(token.encode()).digest()
