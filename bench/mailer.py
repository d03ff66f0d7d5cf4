"""Mailer throughput: 100,000 send.due through one mailer process to a local SMTP sink.

    uv run python bench/mailer.py [--sends 100000]

One real mailer on the real Kafka and PostgreSQL, sending to Postfix's smtp-sink (about
7,000 messages/s here, so the sink is not what is measured). The consent of every
contact is fed first; then the bench publishes the sends and times until the ledger
records every one `sent`. The sink's own counter is checked against it.
Targets (issue 6): >= 1,500 emails/s, RSS < 300 MB.
"""

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import SmtpSink, fresh_topics, report, running, servers, until  # noqa: E402

from contracts.codec import encode  # noqa: E402
from contracts.events import ContactChanged, Recipient, SendDue  # noqa: E402
from contracts.steps import EmailContent  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

CONTENT = EmailContent(
    subject="{{ first_name }}, your April picks",
    text="Hello {{ first_name }},\n\nHere is what is new this month.\n\nThe team",
    html="<p>Hello {{ first_name }},</p><p>Here is what is <b>new</b> this month.</p><p><a href=\"https://shop.example/new\">See it</a></p><p>The team</p>",
)


async def main(sends: int) -> None:
    admin_url, bootstrap = servers()
    prefix = await fresh_topics(bootstrap)
    sink_port = free_port()
    sink = SmtpSink(sink_port)
    contacts = [uuid.uuid4() for _ in range(sends)]
    domains = [f"mail{n}.example" for n in range(20)]
    consents = [encode(ContactChanged(contact_id=c, email=f"c{i}@{domains[i % 20]}", marketing_opt_in=True))
                for i, c in enumerate(contacts)]
    print(f"preparing {sends:,} sends ...", flush=True)
    run, campaign, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    messages = [
        encode(SendDue(send_id=uuid.uuid4(), campaign_id=campaign, run_id=run, step_index=0, due_at=now,
                       recipient=Recipient(contact_id=c, email=f"c{i}@{domains[i % 20]}", first_name="Ada",
                                           last_name="Lovelace", attributes={"plan": "pro"}),
                       content=CONTENT))
        for i, c in enumerate(contacts)
    ]
    async with running("mailer", "mailer.consent", admin_url, bootstrap, prefix,
                       SMTP_HOST="127.0.0.1", SMTP_PORT=str(sink_port)) as (mailer, publisher, db):
        try:
            await publisher.send_all(consents)
            await until(lambda: db.fetchval("SELECT count(*) = $1 FROM mailer.consent", sends), "consents", 300)
            started, cpu = time.monotonic(), mailer.cpu_seconds()
            await publisher.send_all(messages)
            await until(lambda: db.fetchval("SELECT count(*) >= $1 FROM mailer.ledger WHERE status = 'sent'",
                                            sends), "every send sent", 1800, every=0.25)
            elapsed = time.monotonic() - started
            mailer_cpu = mailer.cpu_seconds() - cpu
            resent = await db.fetchval("SELECT count(*) FROM mailer.resent_after_crash")
        finally:
            counted = sink.stop()
    report("mailer", {
        "sends": sends, "seconds": round(elapsed, 2), "emails_per_second": round(sends / elapsed),
        "mailer_cpu_share": round(mailer_cpu / elapsed, 2),
        "mailer_cpu_ms_per_email": round(mailer_cpu * 1000 / sends, 3), "peak_rss_mb": round(mailer.peak_rss_mb, 1),
        "received_by_sink": counted, "resent_after_crash": resent, "recipient_domains": len(domains),
        "targets": {"emails_per_second": 1500, "peak_rss_mb": 300},
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().sends))
