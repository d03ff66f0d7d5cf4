"""A real mailer process on real Kafka, PostgreSQL and SMTP: an email one contact cannot
fill fails alone, and an SMTP server that refuses AUTH, its greeting or the sender for a
while (a scaled-down minute) fails no one."""

import asyncio
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest

from contracts.events import Recipient, SendDue
from contracts.steps import EmailContent
from tests.support.kafka import committed_lag, message_count
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer
from tests.support.system import spawn, stop_processes, wait_healthy

pytestmark = pytest.mark.integration

SENDS = 200
OUTAGE_SECONDS = 15  # a scaled-down "AUTH refused for 60 s"


def send_due(campaign: uuid.UUID, run: uuid.UUID, index: int, subject: str, first_name: str | None) -> SendDue:
    # The consent travels with the recipient (as evaluated): no contact.changed to wait for.
    return SendDue(send_id=uuid.uuid4(), campaign_id=campaign, run_id=run, step_index=0, due_at=datetime.now(UTC),
                   recipient=Recipient(contact_id=uuid.uuid4(), email=f"r{index}@example.com", first_name=first_name,
                                       marketing_opt_in=True, change_seq=0),
                   content=EmailContent(subject=subject, text="Hello {{ first_name }}"))


class Mailer:
    def __init__(self, database_url: str, kafka_bootstrap: str, topic_prefix: str, smtp: SmtpServer, logs,
                 **extra: str) -> None:
        self.port = free_port()
        self.process = spawn("mailer", {
            **os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC_PREFIX": topic_prefix, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
            "HTTP_PORT": str(self.port), "TRACKING_SECRET": "integration-tracking-secret", **extra,
        }, logs / "mailer.log")

    async def health(self) -> dict:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{self.port}/healthz") as answer:
            return await answer.json()

    def stop(self) -> None:
        stop_processes([self.process])


async def _lag_is_zero(kafka_bootstrap: str, topic_prefix: str) -> bool:
    """Every send.due committed by the mailer: nothing more can come of them."""
    return await committed_lag(kafka_bootstrap, f"{topic_prefix}mailer", f"{topic_prefix}send.due") == 0


async def test_an_email_that_cannot_be_built_for_some_contacts_fails_only_theirs_and_nothing_is_dead_lettered(
    database_url, kafka_bootstrap, topic_prefix, publisher, tmp_path
):
    with SmtpServer() as smtp:
        mailer = Mailer(database_url, kafka_bootstrap, topic_prefix, smtp, tmp_path)
        db = await asyncpg.connect(database_url)
        try:
            await wait_healthy(mailer.port, mailer.process)
            campaign, run = uuid.uuid4(), uuid.uuid4()
            nameless = set(range(0, SENDS, SENDS // 20))  # 20 recipients without a first name
            sends = [send_due(campaign, run, i, "Hi {{ first_name.title() }}", None if i in nameless else f"n{i}")
                     for i in range(SENDS)]
            await publisher.publish_all(sends)
            await eventually(
                lambda: db.fetchval("SELECT count(*) = $1 FROM mailer.ledger WHERE status IN ('sent', 'failed')",
                                    SENDS),
                "every send recorded sent or failed", timeout=45)
            await eventually(lambda: _lag_is_zero(kafka_bootstrap, topic_prefix),
                             "the mailer committed every send.due", timeout=30, every=0.5)
            failed = await db.fetch("SELECT send_id, smtp_message FROM mailer.ledger WHERE status = 'failed'")
            dead_letters = await message_count(kafka_bootstrap, f"{topic_prefix}send.due.dlq")
        finally:
            await db.close()
            await asyncio.to_thread(mailer.stop)

    emails = Counter(address for mail in smtp.received for address in mail.envelope_to)
    print(f"\nbad template: {len(failed)} failed, {len(smtp.received)} emails to {len(emails)} recipients,"
          f" {sum(emails.values()) - len(emails)} duplicates, {dead_letters} dead letters")
    assert {row["send_id"] for row in failed} == {sends[i].send_id for i in nameless}
    assert {row["smtp_message"] for row in failed} == {"cannot build the email: 'None' has no attribute 'title'"}
    assert emails == Counter({f"r{i}@example.com": 1 for i in range(SENDS) if i not in nameless}), \
        "each of the 180 others got exactly one email"
    assert dead_letters == 0


@pytest.mark.parametrize(("refused", "code"), [("auth", "535"), ("greeting", "554"), ("mail_from", "550")])
async def test_smtp_refusing_auth_greeting_or_sender_for_a_while_fails_no_one_and_delivers_everything_once(
    database_url, kafka_bootstrap, topic_prefix, publisher, tmp_path, refused, code
):
    with SmtpServer(auth=("mailer", "secret")) as smtp:
        mailer = Mailer(database_url, kafka_bootstrap, topic_prefix, smtp, tmp_path,
                        SMTP_USERNAME="mailer", SMTP_PASSWORD="secret")
        db = await asyncpg.connect(database_url)
        try:
            await wait_healthy(mailer.port, mailer.process)
            getattr(smtp, f"refuse_{refused}")(OUTAGE_SECONDS)
            outage_ends = time.monotonic() + OUTAGE_SECONDS
            campaign, run = uuid.uuid4(), uuid.uuid4()
            await publisher.publish_all(send_due(campaign, run, i, "Hi {{ first_name }}", f"n{i}")
                                        for i in range(SENDS))

            async def degraded():
                health = await mailer.health()
                return health["status"] == "degraded" and health["degraded"].get("smtp")

            reason = await eventually(degraded, "/healthz says SMTP is degraded", timeout=OUTAGE_SECONDS)
            assert time.monotonic() < outage_ends, "seen while the outage lasts"
            assert not smtp.received
            await eventually(
                lambda: db.fetchval("SELECT count(*) = $1 FROM mailer.ledger WHERE status = 'sent'", SENDS),
                "every send recorded sent", timeout=OUTAGE_SECONDS + 40)
            recovered_after = max(mail.at for mail in smtp.received) - outage_ends
            await eventually(lambda: _lag_is_zero(kafka_bootstrap, topic_prefix),
                             "the mailer committed every send.due", timeout=30, every=0.5)
            statuses = dict(await db.fetch("SELECT status, count(*) FROM mailer.ledger GROUP BY status"))
            resent = await db.fetchval("SELECT count(*) FROM mailer.resent_after_crash")
            health = await eventually(lambda: _ok(mailer), "/healthz ok again once SMTP is back", timeout=10)
            dead_letters = await message_count(kafka_bootstrap, f"{topic_prefix}send.due.dlq")
        finally:
            await db.close()
            await asyncio.to_thread(mailer.stop)

    ids = Counter(str(mail.message["Message-ID"]) for mail in smtp.received)
    print(f"\n{refused} refused {OUTAGE_SECONDS} s ({smtp.refused[refused]} refusals; /healthz: {reason!r}):"
          f" {len(ids)} distinct emails of {SENDS}, {sum(ids.values()) - len(ids)} duplicates,"
          f" ledger {statuses}, resent_after_crash {resent}, {dead_letters} dead letters,"
          f" last email {recovered_after:.1f} s after the server took it again")
    assert smtp.refused[refused] > 0
    assert code in reason
    assert len(ids) == SENDS and sum(ids.values()) == SENDS, "every email delivered exactly once"
    assert statuses == {"sent": SENDS}, "none failed"
    assert resent == 0 and health["resent_after_crash"] == 0
    assert dead_letters == 0


async def _ok(mailer: Mailer) -> dict | None:
    health = await mailer.health()
    return health if health["status"] == "ok" else None
