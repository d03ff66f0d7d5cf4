"""What the mailer does with send.due batches and with contact.changed."""

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import CampaignActivated, CampaignStatusChanged, ContactChanged, SendDue
from mailer import metrics
from mailer.adapters.postgres import CampaignStateStore, Claim, ConsentCache, Ledger
from mailer.adapters.smtp import SmtpPool
from mailer.addresses import BadAddress, parse_address
from mailer.campaigns import CampaignStates
from mailer.domain import CampaignState, Consent, Outcome, RetryPolicy, classify, newer_consent, stopped_by
from mailer.limits import SendingLimits
from mailer.message import build_message
from mailer.settings import Settings

log = structlog.get_logger()
_rng = random.Random()


@dataclass(frozen=True)
class Delivery:
    """What a send needs to go out: the ledger, the consent cache, the campaigns' states,
    SMTP and the rules."""

    ledger: Ledger
    consent: ConsentCache
    smtp: SmtpPool
    limits: SendingLimits
    policy: RetryPolicy
    settings: Settings
    campaigns: CampaignStates


async def deliver(sends: list[SendDue], delivery: Delivery) -> None:
    """Chunk by chunk: claim in the ledger, send side by side, record the outcomes. A crash
    can catch at most the chunks in flight between their claim and their record."""
    size = delivery.settings.delivery_chunk
    for start in range(0, len(sends), size):
        await _chunk(sends[start:start + size], delivery)


async def _chunk(sends: list[SendDue], delivery: Delivery) -> None:
    claims = await delivery.ledger.claim(sends)
    claimed = [send for send in sends if send.send_id in claims]
    if len(claimed) < len(sends):
        answered = await delivery.ledger.answer_again([send for send in sends if send.send_id not in claims])
        log.info("sends_already_handled", count=len(sends) - len(claimed), answered_again=answered)
    if not claimed:
        return
    consents = await delivery.consent.of([send.recipient.contact_id for send in claimed])
    outcomes = await asyncio.gather(*(
        _attempt(send, consents.get(send.recipient.contact_id), claims.pop(send.send_id), delivery)
        for send in claimed
    ))
    await delivery.ledger.record(list(zip(claimed, outcomes, strict=True)))
    for outcome in outcomes:
        metrics.SENDS.labels(outcome.status.value).inc()


async def _attempt(send: SendDue, cached: Consent | None, claim: Claim, delivery: Delivery) -> Outcome:
    if (stopped := stopped_by(delivery.campaigns.state_of(send.campaign_id))) is not None:
        return stopped
    if claim.resent_after_crash:
        log.warning("resending_after_crash", send_id=str(send.send_id))
        metrics.RESENT_AFTER_CRASH.inc()
    now = datetime.now(UTC)
    consent = newer_consent(cached, send.recipient)
    if consent is None:
        # contact.changed has not reached us yet: wait for it like for a busy server.
        return classify(None, "consent not known yet", delivery.policy, send.attempt, claim.first_attempt_at,
                        now, _rng)
    if not consent.allows_marketing:
        return Outcome(DeliveryStatus.SKIPPED_NO_CONSENT)
    settings = delivery.settings
    try:
        address = parse_address(send.recipient.email)
        message = build_message(send, address, settings.mail_from, settings.public_base_url, settings.tracking_secret)
    except (BadAddress, ValueError) as error:  # nothing any retry could mend
        return Outcome(DeliveryStatus.FAILED, None, f"cannot build the email: {error}")
    async with delivery.limits.slot(address.domain), delivery.smtp.connection() as smtp:
        # Checked again at the last moment: a pause may have come while this send waited.
        if (stopped := stopped_by(delivery.campaigns.state_of(send.campaign_id))) is not None:
            return stopped
        code, text = await smtp.send(message, settings.envelope_sender, address.envelope,
                                     smtputf8=address.needs_smtputf8)
    return classify(code, text, delivery.policy, send.attempt, claim.first_attempt_at, datetime.now(UTC), _rng)


async def remember_consent(events: list[ContactChanged], consent: ConsentCache) -> None:
    await consent.remember(events)


_FOLLOWED = {CampaignStatus.ACTIVE: CampaignState.ACTIVE, CampaignStatus.PAUSED: CampaignState.PAUSED,
             CampaignStatus.COMPLETED: CampaignState.COMPLETED}


async def follow_campaign(event: CampaignStatusChanged | CampaignActivated, store: CampaignStateStore,
                          campaigns: CampaignStates) -> None:
    """A campaign's new state, for every mailer instance (the store) and this one at once.
    An activation is older than any status change after it, and only tells of a campaign
    not heard of before."""
    if isinstance(event, CampaignActivated):
        state, unversioned_wins = CampaignState.ACTIVE, False
    elif (state := _FOLLOWED.get(event.status)) is None:
        return
    else:
        unversioned_wins = True
    if await store.follow(event.campaign_id, state, event.status_seq, unversioned_wins):
        campaigns.learn(event.campaign_id, state, event.status_seq or 0)
        log.info("campaign_state_followed", state=state.value, status_seq=event.status_seq)


async def keep_campaign_states(store: CampaignStateStore, campaigns: CampaignStates, stop: asyncio.Event,
                               every: float = 0.2) -> None:
    """Re-reads what every instance stored, so a pause another instance consumed stops
    this one's sends too, within `every` seconds."""
    since = None
    while not stop.is_set():
        try:
            changed, since = await store.changed_since(since)
            for campaign_id, state, status_seq in changed:
                campaigns.learn(campaign_id, state, status_seq)
        except Exception as error:  # the database away: keep what is known, read again
            log.warning("campaign_states_unread", error=repr(error))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass
