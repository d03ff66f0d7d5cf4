"""campaign-api's use cases: one function per request or event, taking it and the adapters
it needs (bound by name in bootstrap.py; unit tests pass fakes).

Calls to segment-svc and flow-engine happen before a transaction opens, never under a
campaign's row lock, and what they were asked about is checked again under the lock.
"""

import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from campaign_api.adapters.passwords import Passwords
from campaign_api.adapters.postgres import (
    AccountRepository,
    CampaignRepository,
    CampaignTransaction,
    ContactHistory,
    Recipients,
    RunRepository,
    SessionRepository,
    StepCounters,
)
from campaign_api.adapters.upstream import Upstreams
from campaign_api.domain import (
    ENGAGEMENT_COUNTERS,
    RECENT_ENGAGEMENTS,
    Account,
    Activity,
    Campaign,
    CampaignDetail,
    CampaignDraft,
    CampaignPatch,
    CampaignStats,
    ChangedDuringActivation,
    ContactEngagement,
    ContactNotFound,
    Credentials,
    FlowNotFound,
    NewAccount,
    NotEditable,
    NothingToSend,
    PlannedSendView,
    RecipientOutcome,
    RenderedEmail,
    SchedulePreview,
    SessionView,
    SignInRefused,
    StepNotFound,
    SystemStatus,
    TemplateNotRenderable,
    TestSendAccepted,
    TestSendRequest,
    campaign_stats,
    check_transition,
    counter_changes,
    latest_per_send,
    merge_activity,
    session_key,
    system_status,
)
from campaign_api.throttle import SignInThrottle
from contracts.enums import CampaignStatus, DeliveryStatus, EngagementKind
from contracts.events import (
    CampaignActivated,
    CampaignScheduled,
    CampaignStatusChanged,
    EmailEngagement,
    EmailStatus,
    EmailTest,
    Recipient,
)
from contracts.links import SendRef
from contracts.steps import EmailContent
from contracts.templates import render
from servicekit.uow import UnitOfWork

Uow = UnitOfWork[CampaignTransaction]
# A draft edited this many times in a row while its activation read its flow is refused (409).
ACTIVATION_ATTEMPTS = 3


async def _checked(draft: CampaignDraft, upstreams: Upstreams) -> tuple[CampaignDraft, list[str]]:
    """The segment must exist; a missing flow is dropped with a warning."""
    await upstreams.require_segment(draft.segment_id)
    warnings = []
    if draft.flow_id is not None and await upstreams.flow_steps(draft.flow_id) is None:
        warnings.append(f"flow {draft.flow_id} was not found: the campaign was saved without a flow")
        draft = draft.model_copy(update={"flow_id": None})
    return draft, warnings


async def create_campaign(draft: CampaignDraft, uow: Uow, upstreams: Upstreams) -> Campaign:
    draft, warnings = await _checked(draft, upstreams)
    async with uow() as tx:
        campaign = await tx.campaigns.add(draft, warnings)
        await tx.campaigns.add_history(campaign.id, None, CampaignStatus.DRAFT)
        return campaign


async def _locked_draft(tx: CampaignTransaction, campaign_id: UUID) -> Campaign:
    campaign = await tx.campaigns.locked(campaign_id)
    if campaign.status is not CampaignStatus.DRAFT:
        raise NotEditable(campaign.status)
    return campaign


async def update_campaign(campaign_id: UUID, patch: Callable[[], Awaitable[CampaignPatch]], uow: Uow,
                          campaigns: CampaignRepository, upstreams: Upstreams) -> Campaign:
    """PATCH of a draft. `patch` reads the request's body, once the campaign is known to be
    a draft: a 404 or a 409 answers before the body is looked at."""
    current = await campaigns.get(campaign_id)
    if current.status is not CampaignStatus.DRAFT:
        raise NotEditable(current.status)
    draft, warnings = await _checked(current.patched(await patch()), upstreams)
    async with uow() as tx:
        await _locked_draft(tx, campaign_id)  # still a draft, now that the upstreams answered
        return await tx.campaigns.replace(campaign_id, draft, warnings)


async def delete_campaign(campaign_id: UUID, uow: Uow) -> None:
    async with uow() as tx:
        await _locked_draft(tx, campaign_id)
        await tx.campaigns.delete(campaign_id)


async def change_status(campaign_id: UUID, target: CampaignStatus, uow: Uow, campaigns: CampaignRepository,
                        upstreams: Upstreams) -> Campaign:
    """PUT /status: activate a draft, pause, resume, or complete by hand."""
    if target is CampaignStatus.ACTIVE:
        return await activate_campaign(campaign_id, uow, campaigns, upstreams)
    async with uow() as tx:
        return await _transition(tx, await tx.campaigns.locked(campaign_id), target)


async def activate_campaign(campaign_id: UUID, uow: Uow, campaigns: CampaignRepository,
                            upstreams: Upstreams) -> Campaign:
    """draft -> active: the flow's steps (read from flow-engine before the transaction) are
    snapshotted into campaign.activated with a new run. Under the row lock the campaign
    must be the draft whose flow was read: edited meanwhile, its flow is read again; no
    longer a draft, the request is what it would have been after that change (a resume
    of a paused campaign, a 409 for an active one). Anything else is a resume or a 409."""
    for _ in range(ACTIVATION_ATTEMPTS):
        seen = await campaigns.get(campaign_id)
        if seen.status is not CampaignStatus.DRAFT:
            break
        flow_steps = await upstreams.flow_steps(seen.flow_id) if seen.flow_id else None
        async with uow() as tx:
            campaign = await tx.campaigns.locked(campaign_id)
            if campaign.status is not CampaignStatus.DRAFT:
                return await _transition(tx, campaign, CampaignStatus.ACTIVE)
            if campaign.updated_at == seen.updated_at:
                return await _activate(tx, campaign, flow_steps)
    else:
        raise ChangedDuringActivation(f"campaign {campaign_id} kept changing while it was being activated")
    async with uow() as tx:
        return await _transition(tx, await tx.campaigns.locked(campaign_id), CampaignStatus.ACTIVE)


async def _activate(tx: CampaignTransaction, campaign: Campaign, flow_steps: list | None) -> Campaign:
    steps = campaign.steps_or_content(flow_steps)
    now = datetime.now(UTC)
    run_id = uuid4()
    await tx.runs.start(run_id, campaign.id)
    active, status_seq = await _set_status(tx, campaign, CampaignStatus.ACTIVE, run_id=run_id, activated_at=now)
    await tx.emit(CampaignActivated(
        campaign_id=campaign.id, run_id=run_id, segment_id=campaign.segment_id, steps=steps,
        start_date=campaign.start_date, start_time_of_day=campaign.start_time_of_day,
        timezone=campaign.timezone, send_in_recipient_timezone=campaign.send_in_recipient_timezone,
        optimize_send_time=campaign.optimize_send_time,
        start_at=campaign.plan(steps, now)[0].due_at, activated_at=now, status_seq=status_seq,
    ))
    return active


async def _transition(tx: CampaignTransaction, campaign: Campaign, target: CampaignStatus) -> Campaign:
    """Pause, resume or complete by hand, the campaign locked."""
    check_transition(campaign.status, target)
    if target is CampaignStatus.COMPLETED:
        return (await _set_status(tx, campaign, target, completed_at=datetime.now(UTC)))[0]
    changed, _ = await _set_status(tx, campaign, target)
    if target is CampaignStatus.ACTIVE and campaign.run_id is not None:
        # Every send may have finished while the campaign was paused.
        return await complete_when_done(tx, campaign.run_id) or changed
    return changed


async def _set_status(tx: CampaignTransaction, campaign: Campaign, target: CampaignStatus,
                      **stamps) -> tuple[Campaign, int]:
    """The change, its history and its campaign.status; returns the campaign and its new
    status sequence."""
    changed, status_seq = await tx.campaigns.set_status(campaign.id, target, **stamps)
    await tx.campaigns.add_history(campaign.id, campaign.status, target)
    await tx.emit(CampaignStatusChanged(campaign_id=campaign.id, run_id=changed.run_id, status=target,
                                        previous=campaign.status, status_seq=status_seq))
    return changed, status_seq


async def complete_when_done(tx: CampaignTransaction, run_id: UUID) -> Campaign | None:
    """active -> completed once every send campaign.scheduled announced for the campaign's
    current run is terminal; returns the completed campaign, or None."""
    campaign_id = await tx.runs.campaign_done(run_id)
    if campaign_id is None:
        return None
    campaign = await tx.campaigns.locked(campaign_id)
    if campaign.status is not CampaignStatus.ACTIVE:
        return None
    return (await _set_status(tx, campaign, CampaignStatus.COMPLETED, completed_at=datetime.now(UTC)))[0]


async def record_scheduled(event: CampaignScheduled, uow: Uow) -> None:
    """campaign.scheduled: how many sends make the run; a run of none completes at once."""
    async with uow() as tx:
        await tx.runs.schedule(event.run_id, event.recipients, event.sends)
        await complete_when_done(tx, event.run_id)


async def record_outcomes(events: list[EmailStatus], uow: Uow) -> None:
    """email.status, a batch in one transaction: each send's latest status and the steps'
    counters. A send turning terminal counts once towards its run, and a run completes its
    campaign when all its sends have. Redelivered or stale news changes nothing."""
    latest = latest_per_send(events)
    async with uow() as tx:
        ids = sorted(latest)  # locked in one order: concurrent batches cannot deadlock
        previous = await tx.outcomes.lock(ids)
        changed = await tx.outcomes.keep([latest[send_id] for send_id in ids])
        if not changed:
            return
        await tx.counters.add(counter_changes(changed, previous))
        finished = Counter(row["run_id"] for row in changed if DeliveryStatus(row["status"]).is_terminal)
        if finished:
            await tx.runs.add_terminal(finished)
            for run_id in finished:
                await complete_when_done(tx, run_id)


async def record_engagement(ref: SendRef, kind: str, url: str | None, uow: Uow) -> bool:
    """The first open, machine open, click or unsubscribe of a send counts and is published
    (email.engagement); a repeat changes nothing. True when it counted."""
    async with uow() as tx:
        if not await tx.engagements.first(ref, kind, url):
            return False
        await tx.counters.add({(ref.campaign_id, ref.step_index): {ENGAGEMENT_COUNTERS[kind]: 1}})
        machine = kind == "machine_open"
        await tx.emit(EmailEngagement(
            campaign_id=ref.campaign_id, run_id=ref.run_id, send_id=ref.send_id, contact_id=ref.contact_id,
            step_index=ref.step_index, kind=EngagementKind.OPEN if machine else EngagementKind(kind),
            url=url, machine=machine,
        ))
        return True


async def list_campaigns(status: CampaignStatus | None, after: tuple | None, limit: int,
                         campaigns: CampaignRepository) -> list[Campaign]:
    return await campaigns.page(status, after, limit)


async def show_campaign(campaign_id: UUID, campaigns: CampaignRepository) -> CampaignDetail:
    campaign = await campaigns.get(campaign_id)
    return CampaignDetail(**campaign.model_dump(), status_history=await campaigns.history(campaign.id))


async def report_stats(campaign_id: UUID, campaigns: CampaignRepository, runs: RunRepository,
                       counters: StepCounters) -> CampaignStats:
    """From the counters alone: a few rows whatever the number of sends."""
    campaign = await campaigns.get(campaign_id)
    progress = await runs.progress(campaign.run_id) if campaign.run_id else None
    targeted, scheduled = progress or (None, None)
    return campaign_stats(campaign_id, campaign.status, targeted, scheduled, await counters.of(campaign_id))


async def preview_schedule(campaign_id: UUID, campaigns: CampaignRepository, upstreams: Upstreams) -> SchedulePreview:
    """When each email would go if the campaign were activated now."""
    campaign = await campaigns.get(campaign_id)
    flow_steps = await upstreams.flow_steps(campaign.flow_id) if campaign.flow_id else None
    try:
        planned = campaign.plan(campaign.steps_or_content(flow_steps), datetime.now(UTC))
    except NothingToSend:
        planned = []  # nothing to send yet: nothing planned
    return SchedulePreview(
        campaign_id=campaign.id, timezone=campaign.timezone,
        sends=[PlannedSendView(step_index=p.step_index, utc=p.due_at, local=p.local(campaign.timezone))
               for p in planned],
    )


# People: accounts, sign-in, sessions.

async def add_account(account: NewAccount, uow: Uow, passwords: Passwords) -> Account:
    """A person who can sign in (`python -m campaign_api.accounts add`); AccountExists when
    the email has one already."""
    password_hash = await passwords.hash(account.password)
    async with uow() as tx:
        return await tx.accounts.add(account.email, password_hash)


async def sign_in(credentials: Credentials, client: str, hours: float, uow: Uow, accounts: AccountRepository,
                  passwords: Passwords, throttle: SignInThrottle) -> tuple[SessionView, str]:
    """A new session and its cookie's token, for the right password; SignInRefused otherwise,
    after the same work whether the email has an account or not. Too many failures for the
    email or from the client's address refuse even the right password for a while."""
    keys = (f"email:{credentials.email.lower()}", f"client:{client}")
    throttle.check(*keys)
    account = await accounts.by_email(credentials.email)
    matches = await passwords.verify(account.password_hash if account else passwords.decoy, credentials.password)
    if account is None or not matches:
        throttle.failed(*keys)
        raise SignInRefused()
    throttle.succeeded(keys[0])
    token, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with uow() as tx:
        await tx.sessions.delete_expired()
        await tx.sessions.add(session_key(token), account.id, csrf_token, datetime.now(UTC) + timedelta(hours=hours))
    return SessionView(email=account.email, csrf_token=csrf_token), token


async def session_of(token: str | None, sessions: SessionRepository) -> SessionView | None:
    """The live session of a cookie's token, or None."""
    return await sessions.get(session_key(token)) if token else None


async def sign_out(token: str | None, uow: Uow) -> None:
    if token:
        async with uow() as tx:
            await tx.sessions.delete(session_key(token))


# The report's recipients and activity, the status page.

async def list_recipients(campaign_id: UUID, status: str | None, after: tuple | None, limit: int,
                          campaigns: CampaignRepository, recipients: Recipients,
                          upstreams: Upstreams) -> list[RecipientOutcome]:
    """A page of the campaign's sends with their latest outcome, and each contact's address
    as segment-svc knows it now."""
    await campaigns.get(campaign_id)
    rows = await recipients.page(campaign_id, status, after, limit)
    emails = await upstreams.emails_of({row["contact_id"] for row in rows if row["contact_id"]})
    return [RecipientOutcome(**row, email=emails.get(row["contact_id"])) for row in rows]


async def campaign_activity(campaign_id: UUID, bucket: str, campaigns: CampaignRepository,
                            recipients: Recipients) -> Activity:
    """Sends (by their latest outcome's time) and engagements per minute or hour."""
    await campaigns.get(campaign_id)
    sends = await recipients.sends_per_bucket(campaign_id, bucket)
    engagements = await recipients.engagements_per_bucket(campaign_id, bucket)
    return Activity(campaign_id=campaign_id, bucket=bucket, buckets=merge_activity(sends, engagements))


async def report_engagement(contact_id: UUID, contact_history: ContactHistory) -> ContactEngagement:
    """A contact's sends and engagement, as campaign-api recorded them: it does not own
    contacts, so an id it never sent to has zeros."""
    counts = await contact_history.counts(contact_id)
    recent = await contact_history.recent(contact_id, RECENT_ENGAGEMENTS)
    return ContactEngagement(contact_id=contact_id, **counts, recent=recent)


async def report_status(own: dict, upstreams: Upstreams) -> SystemStatus:
    return system_status(await upstreams.healths(own))


# A flow's email step rendered for a contact, and sent as a test.

async def _email_step(flow_id: UUID, index: int, upstreams: Upstreams) -> EmailContent:
    flow = await upstreams.flow(flow_id)
    if flow is None:
        raise FlowNotFound(flow_id)
    steps = flow.get("steps") or []
    if not 0 <= index < len(steps) or steps[index].get("type") != "SEND_EMAIL":
        raise StepNotFound(f"flow {flow_id} has no email step {index}")
    return EmailContent.model_validate(steps[index]["config"])


async def _recipient(contact_id: UUID | None, upstreams: Upstreams, fallback_email: str) -> Recipient:
    if contact_id is None:
        return Recipient(contact_id=UUID(int=0), email=fallback_email)
    contact = await upstreams.contact(contact_id)
    if contact is None:
        raise ContactNotFound(contact_id)
    return Recipient(contact_id=contact_id, email=contact["email"], first_name=contact.get("first_name"),
                     last_name=contact.get("last_name"), timezone=contact.get("timezone"),
                     attributes=contact.get("attributes") or {})


def rendered(content: EmailContent, recipient: Recipient, index: int = 0) -> RenderedEmail:
    """The step as the mailer renders it (contracts.templates, the recipient's template
    fields); TemplateNotRenderable names the part that fails."""
    fields = recipient.template_fields()
    parts = {}
    for name in ("subject", "html", "text"):
        try:
            parts[name] = render(getattr(content, name) or "", fields, html=name == "html")
        except Exception as error:  # a sandbox refusal, or e.g. a number added to a text
            raise TemplateNotRenderable(f"steps[{index}].config.{name}", str(error) or type(error).__name__) from None
    return RenderedEmail(**parts)


async def render_step(flow_id: UUID, index: int, contact_id: UUID, upstreams: Upstreams) -> RenderedEmail:
    content = await _email_step(flow_id, index, upstreams)
    return rendered(content, await _recipient(contact_id, upstreams, ""), index)


async def send_test(flow_id: UUID, index: int, ask: TestSendRequest, requested_by: str | None, uow: Uow,
                    upstreams: Upstreams) -> TestSendAccepted:
    """Renders the step for the contact (so that a template that cannot render is a 422
    now, not a silent failure in the mailer) and publishes email.test for the mailer."""
    content = await _email_step(flow_id, index, upstreams)
    recipient = await _recipient(ask.contact_id, upstreams, str(ask.to[0]))
    rendered(content, recipient, index)
    test = EmailTest(test_id=uuid4(), flow_id=flow_id, step_index=index, to=ask.to, recipient=recipient,
                     content=content, requested_by=requested_by)
    async with uow() as tx:
        await tx.emit(test)
    return TestSendAccepted(test_id=test.test_id, to=[str(address) for address in ask.to])
