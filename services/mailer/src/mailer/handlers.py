"""What the mailer does with a send.due and a contact.changed."""

import random
from datetime import UTC, datetime
from email.utils import parseaddr

import structlog

from contracts.enums import DeliveryStatus
from contracts.events import ContactChanged, SendDue
from mailer.adapters.postgres import ConsentCache, Ledger
from mailer.adapters.smtp import SmtpPool
from mailer.domain import Outcome, RetryPolicy, classify
from mailer.message import build_message
from mailer.settings import Settings

log = structlog.get_logger()
_rng = random.Random()


async def deliver(
    send: SendDue, ledger: Ledger, consent: ConsentCache, smtp: SmtpPool, settings: Settings, policy: RetryPolicy
) -> None:
    claim = await ledger.claim(send)
    if claim is None:
        log.info("send_already_handled", attempt=send.attempt)
        return
    if claim.resent_after_crash:
        log.warning("resending_after_crash")
    now = datetime.now(UTC)
    permission = await consent.of(send.recipient.contact_id)
    if permission is None:
        # contact.changed has not reached us yet: wait for it like for a busy server.
        outcome = classify(None, "consent not known yet", policy, send.attempt, claim.first_attempt_at, now, _rng)
    elif not permission.allows_marketing:
        outcome = Outcome(DeliveryStatus.SKIPPED_NO_CONSENT)
    else:
        outcome = await _send(send, smtp, settings, policy, claim.first_attempt_at, now)
    await ledger.record(send, outcome)
    log.info("send_handled", status=outcome.status.value, smtp_code=outcome.smtp_code, attempt=send.attempt)


async def _send(send: SendDue, smtp: SmtpPool, settings: Settings, policy: RetryPolicy,
                first_attempt_at: datetime, now: datetime) -> Outcome:
    try:
        message = build_message(send, settings.mail_from, settings.public_base_url, settings.tracking_secret)
    except ValueError as error:  # an address or a template that cannot make an email
        return Outcome(DeliveryStatus.FAILED, None, f"cannot build the email: {error}")
    code, text = await smtp.send(message, parseaddr(settings.mail_from)[1], send.recipient.email)
    return classify(code, text, policy, send.attempt, first_attempt_at, now, _rng)


async def remember_consent(event: ContactChanged, consent: ConsentCache) -> None:
    await consent.remember(event)
