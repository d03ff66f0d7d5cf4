"""What the mailer does with send.due batches and with contact.changed."""

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from contracts.enums import DeliveryStatus
from contracts.events import ContactChanged, SendDue
from mailer import metrics
from mailer.adapters.postgres import Claim, ConsentCache, Ledger
from mailer.adapters.smtp import SmtpPool
from mailer.addresses import BadAddress, parse_address
from mailer.domain import Consent, Outcome, RetryPolicy, classify
from mailer.limits import SendingLimits
from mailer.message import build_message
from mailer.settings import Settings

log = structlog.get_logger()
_rng = random.Random()


@dataclass(frozen=True)
class Delivery:
    """What a send needs to go out: the ledger, the consent cache, SMTP and the rules."""

    ledger: Ledger
    consent: ConsentCache
    smtp: SmtpPool
    limits: SendingLimits
    policy: RetryPolicy
    settings: Settings


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
        log.info("sends_already_handled", count=len(sends) - len(claimed))
    if not claimed:
        return
    consents = await delivery.consent.of([send.recipient.contact_id for send in claimed])
    outcomes = await asyncio.gather(*(
        _attempt(send, claims.pop(send.send_id), consents.get(send.recipient.contact_id), delivery)
        for send in claimed
    ))
    await delivery.ledger.record(list(zip(claimed, outcomes, strict=True)))
    for outcome in outcomes:
        metrics.SENDS.labels(outcome.status.value).inc()


async def _attempt(send: SendDue, claim: Claim, consent: Consent | None, delivery: Delivery) -> Outcome:
    if claim.resent_after_crash:
        log.warning("resending_after_crash", send_id=str(send.send_id))
        metrics.RESENT_AFTER_CRASH.inc()
    now = datetime.now(UTC)
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
    async with delivery.limits.slot(address.domain):
        code, text = await delivery.smtp.send(message, settings.envelope_sender, address.envelope,
                                              smtputf8=address.needs_smtputf8)
    return classify(code, text, delivery.policy, send.attempt, claim.first_attempt_at, datetime.now(UTC), _rng)


async def remember_consent(event: ContactChanged, consent: ConsentCache) -> None:
    await consent.remember(event)
