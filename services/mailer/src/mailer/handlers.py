"""The mailer's use cases, one function each: deliver the sends that fall due, send the
tests of an email step, remember consent, follow each campaign's state and keep it fresh,
and what /healthz adds. Each
takes the event (or the batch, or the stop event of a task) and the adapters it needs,
bound by name from bootstrap.adapters, so that a unit test hands it fakes."""

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from contracts.codec import Message, email_status_message
from contracts.enums import CampaignStatus, DeliveryStatus
from contracts.events import CampaignActivated, CampaignStatusChanged, ContactChanged, EmailTest, SendDue
from mailer import metrics
from mailer.adapters.postgres import UNAVAILABLE, CampaignStateStore, ConsentCache, MailerTransaction
from mailer.adapters.smtp import SmtpPool
from mailer.addresses import BadAddress, parse_address
from mailer.campaigns import CampaignStates
from mailer.domain import (
    CampaignState,
    Claim,
    Consent,
    Outcome,
    RetryPolicy,
    SmtpAnswer,
    SmtpUnavailable,
    Unsent,
    classify,
    is_the_servers,
    newer_consent,
    settle,
    stopped_by,
)
from mailer.email_tests import EmailTestsInFlight, TestProgress
from mailer.limits import SendingLimits
from mailer.message import RenderedTest, build_message, build_test_message, render_test
from mailer.pace import SentPace
from mailer.server import ChunkServer, SmtpTrouble
from mailer.settings import Settings
from servicekit.health import HEALTH
from servicekit.kafka import Rejected
from servicekit.retry import pause, persistently
from servicekit.uow import UnitOfWork

log = structlog.get_logger()
_rng = random.Random()


async def deliver(sends: list[SendDue], uow: UnitOfWork[MailerTransaction], consent: ConsentCache,
                  campaigns: CampaignStates, smtp: SmtpPool, limits: SendingLimits, retry_policy: RetryPolicy,
                  trouble: SmtpTrouble, pace: SentPace, settings: Settings) -> None:
    """Chunk by chunk: claim in the ledger, send side by side, record the outcomes. A crash
    can catch at most the chunks in flight between their claim and their record. Raises
    SmtpUnavailable when the SMTP server cannot be used (the batch is then retried)."""
    size = settings.delivery_chunk
    for start in range(0, len(sends), size):
        attempts = _Attempts(campaigns, smtp, limits, retry_policy, settings,
                             ChunkServer(suspect=trouble.reason is not None))
        await _deliver_chunk(sends[start:start + size], uow, consent, trouble, pace, attempts)


async def _deliver_chunk(sends: list[SendDue], uow: UnitOfWork[MailerTransaction], consent: ConsentCache,
                         trouble: SmtpTrouble, pace: SentPace, attempts: "_Attempts") -> None:
    async with uow() as tx:
        claims = await tx.ledger.claim(sends)
    claimed = [send for send in sends if send.send_id in claims]
    if len(claimed) < len(sends):
        answered = await answer_again(uow, [send for send in sends if send.send_id not in claims])
        log.info("sends_already_handled", count=len(sends) - len(claimed), answered_again=answered)
    if not claimed:
        return
    consents = await consent.of([send.recipient.contact_id for send in claimed])
    settled = await asyncio.gather(*(
        attempts.settle(send, consents.get(send.recipient.contact_id), claims[send.send_id]) for send in claimed
    ))
    outcomes = [(send, done) for send, done in zip(claimed, settled, strict=True) if isinstance(done, Outcome)]
    released = [(send, claims[send.send_id]) for send, done in zip(claimed, settled, strict=True)
                if isinstance(done, Unsent) and not done.maybe_delivered]
    await record_outcomes(uow, outcomes, released)
    for _, outcome in outcomes:
        metrics.SENDS.labels(outcome.status.value).inc()
    pace.sent(sum(1 for _, outcome in outcomes if outcome.status is DeliveryStatus.SENT))
    server = attempts.server
    if server.unusable is not None:
        # The server's trouble, not the recipients': what it kept from going is not failed
        # but released (or left `sending` when it may have arrived), and the batch retried.
        trouble.reason = server.unusable
        HEALTH.degraded("smtp", server.unusable)
        log.warning("smtp_unavailable", reason=server.unusable, recorded=len(outcomes), released=len(released),
                    left_sending=len(claimed) - len(outcomes) - len(released))
        raise SmtpUnavailable(server.unusable)
    if server.answered:
        trouble.reason = None
        HEALTH.recovered("smtp")


async def answer_again(uow: UnitOfWork[MailerTransaction], sends: list[SendDue]) -> int:
    """For sends that came round again though the ledger has their answer (a send.due
    emitted again, its answer overdue), that answer again: the scheduler learns of it
    whatever became of the first. Returns how many."""
    by_id = {send.send_id: send for send in sends}
    async with uow() as tx:
        answers = await tx.ledger.answers(list(by_id))
        await tx.emit(*(email_status(by_id[send_id], answer.outcome, answer.attempt)
                        for send_id, answer in answers.items()))
    return len(answers)


async def record_outcomes(uow: UnitOfWork[MailerTransaction], outcomes: list[tuple[SendDue, Outcome]],
                          released: list[tuple[SendDue, Claim]]) -> None:
    """The chunk's outcomes with their email.status events, and the release of the claims
    of `released` (sends the SMTP server kept from going), in one transaction, once the
    database takes them: they are what the SMTP server said, so while the database is away
    they are kept and offered again, not sent again (the consumer loop's retry would
    re-send the chunk, and count it `resent_after_crash`)."""
    if not outcomes and not released:
        return
    statuses = [email_status(send, outcome) for send, outcome in outcomes]

    async def record() -> None:
        async with uow() as tx:
            if released:
                await tx.ledger.release(released)
            if outcomes:
                await tx.ledger.record(outcomes)
                await tx.emit(*statuses)

    await persistently("database", record, retry_on=UNAVAILABLE, waits=_DATABASE_AWAY)


def email_status(send: SendDue, outcome: Outcome, attempt: int | None = None) -> Message:
    """The answer to a send.due (email.status, encoded): what became of it, at its attempt
    (`attempt`, else the send's)."""
    return email_status_message(
        send_id=send.send_id, campaign_id=send.campaign_id, run_id=send.run_id, step_index=send.step_index,
        contact_id=send.recipient.contact_id, status=outcome.status.value, attempt=attempt or send.attempt,
        smtp_code=outcome.smtp_code, smtp_message=outcome.smtp_message, retry_at=outcome.retry_at,
    )


# Waits while the database is away with a chunk's outcomes: short, since SMTP answers are
# kept meanwhile and a consumer's stop waits for them (no `stop`: leaving now would send
# the chunk again after the restart).
_DATABASE_AWAY = (0.2, 0.4, 0.8, 1.6, 3.2, 5.0)


@dataclass(frozen=True)
class _Attempts:
    """How each send of one chunk is tried: the campaign's state and consent checked, the
    email built, then one SMTP transaction, as the chunk found the server."""

    campaigns: CampaignStates
    smtp: SmtpPool
    limits: SendingLimits
    policy: RetryPolicy
    settings: Settings
    server: ChunkServer

    async def settle(self, send: SendDue, cached: Consent | None, claim: Claim) -> Outcome | Unsent:
        """One send's outcome, whatever it meets: nothing one send raises may lose the
        outcomes of the others."""
        try:
            return await self._attempt(send, cached, claim)
        except Exception as error:  # a fault of ours: this send alone is tried again later
            log.exception("send_attempt_failed", send_id=str(send.send_id))
            return classify(None, f"unexpected error: {error!r}", self.policy, send.attempt,
                            claim.first_attempt_at, datetime.now(UTC), _rng)

    async def _attempt(self, send: SendDue, cached: Consent | None, claim: Claim) -> Outcome | Unsent:
        if (stopped := stopped_by(self.campaigns.state_of(send.campaign_id))) is not None:
            return stopped
        if claim.resent_after_crash:
            log.warning("resending_after_crash", send_id=str(send.send_id))
            metrics.RESENT_AFTER_CRASH.inc()
        consent = newer_consent(cached, send.recipient)
        if consent is None:
            # contact.changed has not reached us yet: wait for it like for a busy server.
            return classify(None, "consent not known yet", self.policy, send.attempt, claim.first_attempt_at,
                            datetime.now(UTC), _rng)
        if not consent.allows_marketing:
            return Outcome(DeliveryStatus.SKIPPED_NO_CONSENT)
        settings, server = self.settings, self.server
        try:
            address = parse_address(send.recipient.email)
            message = build_message(send, address, settings.mail_from, settings.public_base_url,
                                    settings.tracking_secret)
        except Exception as error:  # a bad address, a template this contact cannot fill: nothing a retry could mend
            return Outcome(DeliveryStatus.FAILED, None, f"cannot build the email: {error}")
        if server.unusable is not None:
            return Unsent(server.unusable)
        async with server.turn(), self.limits.slot(address.domain), self.smtp.connection() as smtp:
            # Checked again at the last moment: a pause may have come while this send waited.
            if (stopped := stopped_by(self.campaigns.state_of(send.campaign_id))) is not None:
                return stopped
            if server.unusable is not None:  # found so by another send meanwhile
                return Unsent(server.unusable)
            answer = await smtp.send(message, settings.envelope_sender, address.envelope,
                                     smtputf8=address.needs_smtputf8)
            settled = settle(answer, self.policy, send.attempt, claim.first_attempt_at, datetime.now(UTC), _rng)
            server.heard(settled)
        return settled


async def send_test(test: EmailTest, smtp: SmtpPool, limits: SendingLimits, tests_in_flight: EmailTestsInFlight,
                    settings: Settings) -> None:
    """A test of an email step to each of its addresses, rendered as a real send would be
    for its recipient, the subject prefixed "[Test] ": no ledger, no consent, no tracking,
    no email.status, within the sending limits. A template that cannot render, or an
    address refused for good (a bad one, a 5xx), is the test's fault: Rejected (to
    email.test.dlq with the reason) once the other addresses are tried. No answer, a 4xx
    or a refusing server is the infrastructure's: raised, so the consumer loop tries the
    test again, then only to the addresses the server has not taken yet."""
    try:
        rendered = render_test(test)
    except Exception as error:  # a template this recipient cannot fill: no retry could mend it
        tests_in_flight.forget(test.test_id)
        metrics.TEST_EMAILS.labels("rejected").inc(len(test.to))
        raise Rejected(f"the test email cannot be rendered: {error}") from None
    progress = tests_in_flight.of(test.test_id)
    pending = [index for index in range(len(test.to)) if not progress.done(index)]
    failures = await asyncio.gather(*(_send_test_to(rendered, index, test.to[index], progress, smtp, limits, settings)
                                      for index in pending))
    unavailable = [reason for reason in failures if reason is not None]
    if unavailable:  # the server's trouble: what it took is remembered for the retry
        log.warning("test_email_waits_for_smtp", test_id=str(test.test_id), waiting=len(unavailable),
                    accepted=len(progress.accepted), reason=unavailable[0])
        raise SmtpUnavailable(f"{len(unavailable)} of {len(test.to)} test emails not taken: {unavailable[0]}")
    tests_in_flight.forget(test.test_id)
    log.info("test_email_sent", test_id=str(test.test_id), flow_id=str(test.flow_id), step_index=test.step_index,
             accepted=len(progress.accepted), refused=len(progress.refused), requested_by=test.requested_by)
    if progress.refused:
        raise Rejected("; ".join(f"{test.to[index]}: {reason}" for index, reason in sorted(progress.refused.items())))


async def _send_test_to(test: RenderedTest, index: int, to: str, progress: TestProgress, smtp: SmtpPool,
                        limits: SendingLimits, settings: Settings) -> str | None:
    """One address of a test: accepted or refused for good, noted in `progress`; else the
    reason the SMTP server could not take it now (the test is then tried again)."""
    try:
        address = parse_address(to)
    except BadAddress as error:
        progress.refused[index] = str(error)
        metrics.TEST_EMAILS.labels("rejected").inc()
        return None
    message = build_test_message(test, index, address, settings.mail_from, datetime.now(UTC))
    try:
        async with limits.slot(address.domain), smtp.connection() as connection:
            answer = await connection.send(message, settings.envelope_sender, address.envelope,
                                           smtputf8=address.needs_smtputf8)
    except Exception as error:  # whatever it was, not the address's fault: tried again
        log.exception("test_email_attempt_failed", test_id=str(test.test_id))
        return f"unexpected error: {error!r}"
    return _heard(answer, index, progress)


def _heard(answer: SmtpAnswer, index: int, progress: TestProgress) -> str | None:
    if answer.code is not None and 200 <= answer.code < 300:
        progress.accepted.add(index)
        metrics.TEST_EMAILS.labels("sent").inc()
        return None
    if is_the_servers(answer) or answer.code < 500:  # no answer, a refusing server, a 4xx: try again
        return str(answer)
    progress.refused[index] = str(answer)  # a 5xx to RCPT TO or DATA: this address, for good
    metrics.TEST_EMAILS.labels("rejected").inc()
    return None


async def remember_consent(events: list[ContactChanged], consent: ConsentCache) -> None:
    """A batch of contact.changed into the consent cache (the newest of each contact wins)."""
    await consent.remember(events)


_FOLLOWED = {CampaignStatus.ACTIVE: CampaignState.ACTIVE, CampaignStatus.PAUSED: CampaignState.PAUSED,
             CampaignStatus.COMPLETED: CampaignState.COMPLETED}


async def follow_campaign(event: CampaignStatusChanged | CampaignActivated, campaign_store: CampaignStateStore,
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
    if await campaign_store.follow(event.campaign_id, state, event.status_seq, unversioned_wins):
        campaigns.learn(event.campaign_id, state, event.status_seq or 0)
        log.info("campaign_state_followed", state=state.value, status_seq=event.status_seq)


async def keep_campaign_states(stop: asyncio.Event, campaign_store: CampaignStateStore, campaigns: CampaignStates,
                               every: float = 0.2) -> None:
    """Re-reads what every instance stored, so a pause another instance consumed stops
    this one's sends too, within `every` seconds."""
    since = None
    while not stop.is_set():
        try:
            changed, since = await campaign_store.changed_since(since)
            for campaign_id, state, status_seq in changed:
                campaigns.learn(campaign_id, state, status_seq)
        except Exception as error:  # the database away: keep what is known, read again
            log.warning("campaign_states_unread", error=repr(error))
        await pause(stop, every)


async def health_figures(uow: UnitOfWork[MailerTransaction], pace: SentPace) -> dict:
    """What /healthz adds: how many sends a crash caught mid-transaction were sent again,
    and this mailer's pace (sends recorded `sent` a second, over the last minute)."""
    async with uow() as tx:
        resent = await tx.ledger.resent_after_crash()
    return {"resent_after_crash": resent, "emails_per_second": pace.per_second()}
