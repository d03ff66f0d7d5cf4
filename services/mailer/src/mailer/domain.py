"""What the mailer decides, without I/O: consent, outcomes of SMTP answers (and whose they
are: the recipient's or the SMTP server's), retry times."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from contracts.enums import DeliveryStatus
from contracts.events import Recipient


@dataclass(frozen=True)
class Consent:
    marketing_opt_in: bool
    deleted: bool = False
    change_seq: int | None = None  # the contact's change sequence it reflects; None: unknown, older than any

    @property
    def allows_marketing(self) -> bool:
        return self.marketing_opt_in and not self.deleted

    @property
    def _order(self) -> int:
        return -1 if self.change_seq is None else self.change_seq


DELETED_SEQ = 2**63 - 1  # a deleted contact's consent: nothing evaluated before the delete is newer


def newer_consent(cached: Consent | None, recipient: Recipient) -> Consent | None:
    """The newer of what contact.changed told the cache and what the recipient carried
    from its evaluation; the cache wins a tie. None: neither knows the contact."""
    if recipient.marketing_opt_in is None:
        return cached
    evaluated = Consent(recipient.marketing_opt_in, change_seq=recipient.change_seq)
    if cached is None or evaluated._order > cached._order:
        return evaluated
    return cached


class CampaignState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


def stopped_by(state: CampaignState) -> "Outcome | None":
    """What becomes of a send whose campaign is in `state`: held while it is paused (due
    again on resume), cancelled once it is completed; None: it may go."""
    if state is CampaignState.PAUSED:
        return Outcome(DeliveryStatus.HELD, smtp_message="campaign paused")
    if state is CampaignState.COMPLETED:
        return Outcome(DeliveryStatus.CANCELLED, smtp_message="campaign completed")
    return None


@dataclass(frozen=True)
class Outcome:
    status: DeliveryStatus
    smtp_code: int | None = None
    smtp_message: str | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """A send this mailer may now try: its first attempt time, whether a crash had caught
    an earlier try of it mid-transaction (counted once, the first time it is found), and
    its row's (status, attempt) before the claim, None for a new row: what a release puts
    back."""

    first_attempt_at: datetime
    resent_after_crash: bool
    before: tuple[str, int] | None = None


@dataclass(frozen=True)
class Answer:
    """What the ledger holds of a settled send: the attempt it settled and its outcome."""

    attempt: int
    outcome: Outcome


@dataclass(frozen=True)
class RetryPolicy:
    initial_seconds: float = 300
    max_seconds: float = 3600
    lifetime_seconds: float = 259200

    def retry_at(self, attempt: int, first_attempt_at: datetime, now: datetime, rng: random.Random) -> datetime | None:
        """When to try again after `attempt` failed, or None when the lifetime is spent.

        Exponential backoff capped at max, with jitter in [50%, 100%] of the delay so that
        a domain's deferred sends do not all come back in the same second."""
        delay = min(self.initial_seconds * 2 ** (attempt - 1), self.max_seconds)
        at = now + timedelta(seconds=delay * rng.uniform(0.5, 1.0))
        if at > first_attempt_at + timedelta(seconds=self.lifetime_seconds):
            return None
        return at


def classify(code: int | None, message: str | None, policy: RetryPolicy, attempt: int,
             first_attempt_at: datetime, now: datetime, rng: random.Random) -> Outcome:
    """2xx sent; 5xx failed for good; 4xx or no answer (code None) deferred, until the
    lifetime is spent, then failed."""
    if code is not None and 200 <= code < 300:
        return Outcome(DeliveryStatus.SENT, code, message)
    if code is not None and code >= 500:
        return Outcome(DeliveryStatus.FAILED, code, message)
    retry_at = policy.retry_at(attempt, first_attempt_at, now, rng)
    if retry_at is None:
        return Outcome(DeliveryStatus.FAILED, code, f"gave up after {attempt} attempts: {message}")
    return Outcome(DeliveryStatus.DEFERRED, code, message, retry_at)


class Stage(StrEnum):
    """Where in an SMTP session an answer came, or none did."""

    CONNECT = "connect"  # TCP, TLS
    GREETING = "greeting"  # the server's first line (220)
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL_FROM = "mail_from"
    RCPT_TO = "rcpt_to"  # about this recipient
    DATA = "data"  # about this message


@dataclass(frozen=True)
class SmtpAnswer:
    """What became of one SMTP transaction: the answer that ended it (a 2xx to the message,
    or the refusal), at the stage it came. `code` None: no answer came at all (no
    connection, a timeout, the connection lost); `handed_over`: the message itself may have
    reached the server before the answer failed to come."""

    stage: Stage
    code: int | None
    text: str
    handed_over: bool = False

    def __str__(self) -> str:
        if self.code is None:
            return f"{self.stage.value}: no answer ({self.text})"
        return f"{self.stage.value}: {self.code} {self.text}"


_ABOUT_THE_SEND = frozenset({Stage.RCPT_TO, Stage.DATA})
CLOSING = 421  # "service not available, closing transmission channel": whatever the command


def is_the_servers(answer: SmtpAnswer) -> bool:
    """True when the answer says that the SMTP server cannot be used now, and nothing about
    the recipient or the message: no answer at all, a 421 whenever it comes, and any
    refusal before RCPT TO (greeting, EHLO, STARTTLS, AUTH, MAIL FROM: the same for every
    send). Answers to RCPT TO and DATA are the recipient's or the message's."""
    if answer.code is None or answer.code == CLOSING:
        return True
    return answer.stage not in _ABOUT_THE_SEND


@dataclass(frozen=True)
class Unsent:
    """A send that the SMTP server's trouble kept from going: not the recipient's fault, so
    no outcome. Its claim is released (tried again as if never claimed), unless the message
    may have reached the server (`maybe_delivered`): then it stays `sending`, like a send a
    crash caught mid-transaction, and is counted as resent when it goes again."""

    reason: str
    maybe_delivered: bool = False


class SmtpUnavailable(Exception):
    """The SMTP server cannot be used now (refused the greeting, AUTH or MAIL FROM, or does
    not answer): an infrastructure failure. The chunk's sends it kept from going were
    released; the consumer loop retries the batch until the server is back."""


def settle(answer: SmtpAnswer, policy: RetryPolicy, attempt: int, first_attempt_at: datetime, now: datetime,
           rng: random.Random) -> Outcome | Unsent:
    """The outcome of a send from its SMTP transaction, or Unsent when the answer was the
    server's, not the recipient's."""
    if is_the_servers(answer):
        return Unsent(str(answer), maybe_delivered=answer.handed_over)
    return classify(answer.code, answer.text, policy, attempt, first_attempt_at, now, rng)
