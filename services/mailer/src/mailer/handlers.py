"""What the mailer does with send.due batches and with contact.changed."""

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import CampaignActivated, CampaignStatusChanged, ContactChanged, SendDue
from mailer import metrics
from mailer.adapters.postgres import UNAVAILABLE, CampaignStateStore, Claim, ConsentCache, Ledger
from mailer.adapters.smtp import SmtpPool
from mailer.addresses import parse_address
from mailer.campaigns import CampaignStates
from mailer.domain import (
    CampaignState,
    Consent,
    Outcome,
    RetryPolicy,
    SmtpUnavailable,
    Unsent,
    classify,
    newer_consent,
    settle,
    stopped_by,
)
from mailer.limits import SendingLimits
from mailer.message import build_message
from mailer.settings import Settings
from servicekit.health import HEALTH

log = structlog.get_logger()
_rng = random.Random()


@dataclass
class SmtpTrouble:
    """Why the SMTP server was unusable at the last try (None: it was not), shared by the
    chunks: while it is set, a chunk tries the server with one send before the others, so
    that a server refusing AUTH is not sent a connection per send on every retry."""

    reason: str | None = None


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
    trouble: SmtpTrouble = field(default_factory=SmtpTrouble)


async def deliver(sends: list[SendDue], delivery: Delivery) -> None:
    """Chunk by chunk: claim in the ledger, send side by side, record the outcomes. A crash
    can catch at most the chunks in flight between their claim and their record. Raises
    SmtpUnavailable when the SMTP server cannot be used (the batch is then retried)."""
    size = delivery.settings.delivery_chunk
    for start in range(0, len(sends), size):
        await _chunk(sends[start:start + size], delivery)


class _Server:
    """What one chunk's sends learn of the SMTP server: whether it is unusable (then the
    sends not yet begun do not try it), and whether it answered a transaction. When it was
    unusable at the last try, the first send to reach it goes alone (`turn`)."""

    def __init__(self, suspect: bool) -> None:
        self.unusable: str | None = None
        self.answered = False
        self._probing = suspect
        self._probed = asyncio.Event()
        self._probe_taken = False

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._probing and not self._probe_taken:
            self._probe_taken = True
            try:
                yield
            finally:  # whatever became of the probe, the others may go (or learn it is unusable)
                self._probing = False
                self._probed.set()
            return
        if self._probing:
            await self._probed.wait()
        yield

    def heard(self, settled: Outcome | Unsent) -> None:
        if isinstance(settled, Unsent):
            self.unusable = self.unusable or settled.reason
        else:
            self.answered = True


async def _chunk(sends: list[SendDue], delivery: Delivery) -> None:
    claims = await delivery.ledger.claim(sends)
    claimed = [send for send in sends if send.send_id in claims]
    if len(claimed) < len(sends):
        answered = await delivery.ledger.answer_again([send for send in sends if send.send_id not in claims])
        log.info("sends_already_handled", count=len(sends) - len(claimed), answered_again=answered)
    if not claimed:
        return
    consents = await delivery.consent.of([send.recipient.contact_id for send in claimed])
    server = _Server(suspect=delivery.trouble.reason is not None)
    settled = await asyncio.gather(*(
        _guarded_attempt(send, consents.get(send.recipient.contact_id), claims[send.send_id], delivery, server)
        for send in claimed
    ))
    outcomes = [(send, done) for send, done in zip(claimed, settled, strict=True) if isinstance(done, Outcome)]
    released = [(send, claims[send.send_id]) for send, done in zip(claimed, settled, strict=True)
                if isinstance(done, Unsent) and not done.maybe_delivered]
    await _record(delivery.ledger, outcomes, released)
    for _, outcome in outcomes:
        metrics.SENDS.labels(outcome.status.value).inc()
    if server.unusable is not None:
        # The server's trouble, not the recipients': what it kept from going is not failed
        # but released (or left `sending` when it may have arrived), and the batch retried.
        delivery.trouble.reason = server.unusable
        HEALTH.degraded("smtp", server.unusable)
        log.warning("smtp_unavailable", reason=server.unusable, recorded=len(outcomes), released=len(released),
                    left_sending=len(claimed) - len(outcomes) - len(released))
        raise SmtpUnavailable(server.unusable)
    if server.answered:
        delivery.trouble.reason = None
        HEALTH.recovered("smtp")


async def _record(ledger: Ledger, outcomes: list, released: list) -> None:
    """The chunk's outcomes, once the database takes them: they are what the SMTP server
    said, so while the database is away they are kept and offered again, not sent again
    (the consumer loop's retry would re-send the chunk, and count it `resent_after_crash`)."""
    for tries in itertools.count():
        try:
            await ledger.record(outcomes, released)
        except UNAVAILABLE as error:
            HEALTH.degraded("database", repr(error))
            log.warning("outcomes_not_recorded_yet", tries=tries + 1, outcomes=len(outcomes), error=repr(error))
            await asyncio.sleep(min(5.0, 0.2 * 2 ** tries))
        else:
            if tries:
                HEALTH.recovered("database")
            return


async def _guarded_attempt(send: SendDue, cached: Consent | None, claim: Claim, delivery: Delivery,
                           server: _Server) -> Outcome | Unsent:
    """One send's outcome, whatever it meets: nothing one send raises may lose the outcomes
    of the others."""
    try:
        return await _attempt(send, cached, claim, delivery, server)
    except Exception as error:  # a fault of ours: this send alone is tried again later
        log.exception("send_attempt_failed", send_id=str(send.send_id))
        return classify(None, f"unexpected error: {error!r}", delivery.policy, send.attempt,
                        claim.first_attempt_at, datetime.now(UTC), _rng)


async def _attempt(send: SendDue, cached: Consent | None, claim: Claim, delivery: Delivery,
                   server: _Server) -> Outcome | Unsent:
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
    except Exception as error:  # a bad address, a template this contact cannot fill: nothing a retry could mend
        return Outcome(DeliveryStatus.FAILED, None, f"cannot build the email: {error}")
    if server.unusable is not None:
        return Unsent(server.unusable)
    async with server.turn(), delivery.limits.slot(address.domain), delivery.smtp.connection() as smtp:
        # Checked again at the last moment: a pause may have come while this send waited.
        if (stopped := stopped_by(delivery.campaigns.state_of(send.campaign_id))) is not None:
            return stopped
        if server.unusable is not None:  # found so by another send meanwhile
            return Unsent(server.unusable)
        answer = await smtp.send(message, settings.envelope_sender, address.envelope,
                                 smtputf8=address.needs_smtputf8)
        settled = settle(answer, delivery.policy, send.attempt, claim.first_attempt_at, datetime.now(UTC), _rng)
        server.heard(settled)
    return settled


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
