"""Scheduler throughput: 1,000,000 sends from segment.evaluated batches, stored, then emitted.

    uv run python bench/scheduler.py [--sends 1000000] [--batch 2000] [--emails 2]

One real scheduler process on the real Kafka and PostgreSQL. Phase 1 (storing): the run
starts in the future; the bench publishes campaign.activated and the batches, and times
until the scheduler has stored every send and announced the run. Phase 2 (emitting): the
bench moves every due time to now in the database (the clock reaching them) and times
until send.due holds every send. The scheduler's peak RSS is sampled throughout.
Targets (issue 5): >= 50,000 sends/s stored, >= 20,000 send.due/s, RSS < 300 MB.
"""

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import fresh_topics, message_count, report, running, servers, until  # noqa: E402

from contracts import topics  # noqa: E402
from contracts.codec import encode  # noqa: E402
from contracts.events import CampaignActivated, Recipient, SegmentEvaluated  # noqa: E402
from contracts.steps import EmailContent, SendEmailStep, WaitConfig, WaitStep  # noqa: E402
from servicekit.kafka import Topics  # noqa: E402

ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", None]


def flow(emails: int) -> list:
    """The issue's example flow (SEND, WAIT 3 days, SEND) for 2; one email for 1; and so on."""
    email = SendEmailStep(type="SEND_EMAIL", config=EmailContent(subject="Hi {{ first_name }}", text="t"))
    steps = [email]
    for _ in range(emails - 1):
        steps += [WaitStep(type="WAIT", config=WaitConfig(days=3)), email]
    return steps


def events(sends: int, batch: int, emails: int = 2) -> tuple[CampaignActivated, list]:
    start = datetime.now(UTC) + timedelta(days=1)
    run = CampaignActivated(
        campaign_id=uuid4(), run_id=uuid4(), segment_id=uuid4(), steps=flow(emails),
        start_date=start.date(), start_time_of_day=start.time().replace(microsecond=0), timezone="UTC",
        send_in_recipient_timezone=True, start_at=start, activated_at=datetime.now(UTC),
    )
    count = sends // emails // batch
    messages = []
    for n in range(count):
        recipients = [
            Recipient(contact_id=uuid4(), email=f"c{n}.{i}@example.com", first_name="Ada", last_name="L",
                      timezone=ZONES[i % len(ZONES)], attributes={"plan": "pro", "visits": i})
            for i in range(batch)
        ]
        messages.append(encode(SegmentEvaluated(run_id=run.run_id, campaign_id=run.campaign_id, batch_no=n,
                                                recipients=recipients, is_last=n == count - 1)))
    return run, messages


async def main(sends: int, batch: int, emails: int) -> None:
    admin_url, bootstrap = servers()
    prefix = await fresh_topics(bootstrap)
    print(f"preparing {sends:,} sends: {sends // emails:,} recipients x {emails} emails,"
          f" in batches of {batch:,} recipients ...", flush=True)
    run, batches = events(sends, batch, emails)
    # No mailer answers here: the window of sends in flight is opened to the whole run, to
    # time emission alone (bench/fairness.py measures the window with a mailer).
    async with running("scheduler", "scheduler.sends", admin_url, bootstrap, prefix,
                       DUE_WINDOW=str(sends)) as (scheduler, publisher, db):
        started, cpu = time.monotonic(), scheduler.cpu_seconds()
        await publisher.publish(run)
        await publisher.send_all(batches)
        published = time.monotonic() - started
        await until(lambda: db.fetchval("SELECT scheduled_published FROM scheduler.runs WHERE run_id = $1",
                                        run.run_id), "every send stored", 1800)
        stored_in = time.monotonic() - started
        store_cpu = scheduler.cpu_seconds() - cpu
        stored = await db.fetchval("SELECT count(*) FROM scheduler.sends WHERE run_id = $1", run.run_id)

        send_topic = Topics(prefix).physical(topics.SEND_DUE)
        started, cpu = time.monotonic(), scheduler.cpu_seconds()
        await db.execute("UPDATE scheduler.sends SET due_at = now() - interval '1 second' WHERE run_id = $1",
                         run.run_id)
        moved_in = time.monotonic() - started
        await until(lambda: _all_there(bootstrap, send_topic, stored), "every send.due", 1800, every=0.5)
        emitted_in = time.monotonic() - started - moved_in
        emit_cpu = scheduler.cpu_seconds() - cpu
    report(f"scheduler-{emails}-email{'s' if emails > 1 else ''}", {
        "sends": stored, "recipients": stored // emails, "emails_per_recipient": emails, "batch_size": batch,
        "publish_batches_seconds": round(published, 2),
        "store_seconds": round(stored_in, 2), "stored_per_second": round(stored / stored_in),
        "store_scheduler_cpu_share": round(store_cpu / stored_in, 2),
        "emit_seconds": round(emitted_in, 2), "emitted_per_second": round(stored / emitted_in),
        "emit_scheduler_cpu_share": round(emit_cpu / emitted_in, 2),
        "peak_rss_mb": round(scheduler.peak_rss_mb, 1),
        "targets": {"stored_per_second": 50000, "emitted_per_second": 20000, "peak_rss_mb": 300},
    })


async def _all_there(bootstrap: str, topic: str, expected: int) -> bool:
    return await message_count(bootstrap, topic) >= expected


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=2000, help="recipients per segment.evaluated batch")
    parser.add_argument("--emails", type=int, default=2, help="SEND_EMAIL steps of the flow")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sends, arguments.batch, arguments.emails))
