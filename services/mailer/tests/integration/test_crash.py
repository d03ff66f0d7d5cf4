"""The mailer killed (SIGKILL) in the middle of 5,000 sends, then restarted: nothing is
lost, and no more sends are duplicated than were caught mid-transaction."""

import asyncio
import os
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest

from contracts.events import ContactChanged, Recipient, SendDue
from contracts.steps import EmailContent
from tests.support.polling import eventually
from tests.support.ports import free_port
from tests.support.smtp import SmtpServer
from tests.support.system import spawn, stop_processes, wait_healthy

pytestmark = pytest.mark.integration

SENDS = 5000


async def test_a_killed_mailer_loses_nothing_and_resends_only_what_was_in_flight(
    database_url, kafka_bootstrap, topic_prefix, publisher, tmp_path
):
    with SmtpServer() as smtp:
        env = {**os.environ, "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
               "KAFKA_TOPIC_PREFIX": topic_prefix, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port),
               "TRACKING_SECRET": "integration-tracking-secret"}

        def start_mailer(name: str):
            port = free_port()
            return port, spawn("mailer", {**env, "HTTP_PORT": str(port)}, tmp_path / f"{name}.log")

        port, mailer = start_mailer("first")
        db = await asyncpg.connect(database_url)
        try:
            await wait_healthy(port, mailer)
            contacts = [uuid.uuid4() for _ in range(SENDS)]
            await publisher.publish_all(
                ContactChanged(contact_id=c, email=f"r{i}@example.com", marketing_opt_in=True)
                for i, c in enumerate(contacts))
            await eventually(lambda: db.fetchval("SELECT count(*) = $1 FROM mailer.consent", SENDS),
                             "the consent of every contact is known", timeout=60)
            run, campaign = uuid.uuid4(), uuid.uuid4()
            content = EmailContent(subject="Hi {{ first_name }}", text="Hello")
            await publisher.publish_all(
                SendDue(send_id=uuid.uuid4(), campaign_id=campaign, run_id=run, step_index=0,
                        recipient=Recipient(contact_id=c, email=f"r{i}@example.com", first_name="R"),
                        content=content, due_at=datetime.now(UTC))
                for i, c in enumerate(contacts))

            await eventually(lambda: len(smtp.received) >= SENDS // 3, "a third of the sends delivered", timeout=60)
            mailer.kill()  # SIGKILL: no goodbye, whatever was in flight stays in flight
            mailer.wait()
            delivered_before = len(smtp.received)

            port, mailer = start_mailer("second")
            await wait_healthy(port, mailer)
            await eventually(
                lambda: db.fetchval("SELECT count(*) = $1 FROM mailer.ledger WHERE status = 'sent'", SENDS),
                "every send recorded sent", timeout=120)
            resent = await db.fetchval("SELECT count(*) FROM mailer.resent_after_crash")
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as answer:
                metrics = await answer.text()
        finally:
            await db.close()
            await asyncio.to_thread(stop_processes, [mailer])

        ids = [str(mail.message["Message-ID"]) for mail in smtp.received]
        duplicates = len(ids) - len(set(ids))
        print(f"\ncrash test: {delivered_before} delivered before the kill; {resent} sends found mid-transaction"
              f" and sent again; {duplicates} duplicates at the SMTP server; {len(set(ids))} distinct of {SENDS}")
        assert len(set(ids)) == SENDS, "nothing lost"
        assert duplicates <= resent, "duplicates only among the sends caught mid-transaction"
        assert f"mailer_resent_after_crash_total {float(resent)}" in metrics
        assert 'mailer_sends_total{status="sent"}' in metrics
