"""Campaign statistics at a million outcomes, and how fast outcomes are counted.

    uv run python bench/stats.py [--outcomes 1000000] [--events 20000]

One real campaign-api process on the real Kafka and PostgreSQL.
  (a) The database is given a campaign with 1,000,000 recorded send outcomes over three
      flow steps (and 300,000 engagements), counters included, as the consumers would
      have left them; then `GET /api/campaigns/{id}/stats` is timed 200 times.
  (b) --events email.status events of another campaign are published, and timed until
      campaign-api has counted them all (events/s through its consumer).
Target (issue 7): stats under 50 ms.
"""

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from uuid import uuid4

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import fresh_topics, report, running, servers, until  # noqa: E402

from contracts.enums import DeliveryStatus  # noqa: E402
from contracts.events import EmailStatus  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

CAMPAIGN = """
INSERT INTO campaign_api.campaigns (id, name, segment_id, start_date, start_time_of_day, timezone, status, run_id)
VALUES ($1, 'bench', $3, current_date, '09:00', 'UTC', 'active', $2)
"""
RUN = "INSERT INTO campaign_api.runs (run_id, campaign_id, recipients, expected_sends) VALUES ($2, $1, $3 / 3, $3)"
OUTCOMES = """
INSERT INTO campaign_api.send_outcomes (send_id, run_id, campaign_id, step_index, status, attempt)
SELECT gen_random_uuid(), $2, $1, (n % 3) * 2,
       (ARRAY['sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'failed', 'skipped_no_consent', 'deferred'])[n % 10 + 1], 1
FROM generate_series(1, $3) AS n
"""
ENGAGEMENTS = """
INSERT INTO campaign_api.engagements (send_id, kind, campaign_id, step_index, contact_id)
SELECT send_id, (ARRAY['open', 'open', 'click'])[(row_number() OVER ()) % 3 + 1], campaign_id, step_index, gen_random_uuid()
FROM campaign_api.send_outcomes WHERE campaign_id = $1 AND status = 'sent' LIMIT $2
"""
COUNTERS = """
INSERT INTO campaign_api.step_stats (campaign_id, step_index, sent, failed, skipped_no_consent, deferred, opens, clicks)
SELECT o.campaign_id, o.step_index, count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'skipped_no_consent'), count(*) FILTER (WHERE status = 'deferred'),
       (SELECT count(*) FROM campaign_api.engagements e WHERE e.campaign_id = o.campaign_id
          AND e.step_index = o.step_index AND kind = 'open'),
       (SELECT count(*) FROM campaign_api.engagements e WHERE e.campaign_id = o.campaign_id
          AND e.step_index = o.step_index AND kind = 'click')
FROM campaign_api.send_outcomes o WHERE o.campaign_id = $1 GROUP BY o.campaign_id, o.step_index
"""


async def main(outcomes: int, events: int) -> None:
    admin_url, bootstrap = servers()
    prefix = await fresh_topics(bootstrap)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running("campaign_api", "campaign_api.step_stats", admin_url, bootstrap, prefix,
                       GATEWAY_PORT=str(port), API_KEYS="") as (service, publisher, db), \
            aiohttp.ClientSession() as http:
        campaign_id, run_id = uuid4(), uuid4()
        print(f"seeding {outcomes:,} outcomes ...", flush=True)
        await db.execute(CAMPAIGN, campaign_id, run_id, uuid4())
        await db.execute(RUN, campaign_id, run_id, outcomes)
        await db.execute(OUTCOMES, campaign_id, run_id, outcomes)
        await db.execute(ENGAGEMENTS, campaign_id, int(outcomes * 0.3))
        await db.execute(COUNTERS, campaign_id)
        await db.execute("ANALYZE")
        timings, stats = [], None
        for _ in range(200):
            started = time.monotonic()
            async with http.get(f"{base}/api/campaigns/{campaign_id}/stats") as answer:
                stats = await answer.json()
            timings.append((time.monotonic() - started) * 1000)
        recorded = stats["sent"] + stats["failed"] + stats["skipped_no_consent"] + stats["deferred"]
        assert recorded == outcomes, stats

        print(f"counting {events:,} email.status events ...", flush=True)
        other, other_run = uuid4(), uuid4()
        batch = [EmailStatus(send_id=uuid4(), campaign_id=other, run_id=other_run, step_index=0, contact_id=uuid4(),
                             status=DeliveryStatus.SENT, attempt=1) for _ in range(events)]
        started, cpu = time.monotonic(), service.cpu_seconds()
        await publisher.publish_all(batch)
        await until(lambda: _counted(db, other, events), "every email.status counted", 1800, every=0.2)
        counting = time.monotonic() - started
        counting_cpu = service.cpu_seconds() - cpu
    timings.sort()
    report("stats", {
        "outcomes": outcomes, "engagements": int(outcomes * 0.3),
        "stats_ms": {"median": round(statistics.median(timings), 2), "p95": round(timings[189], 2),
                     "max": round(timings[-1], 2)},
        "email_status_events": events, "counted_per_second": round(events / counting),
        "counting_service_cpu_share": round(counting_cpu / counting, 2),
        "peak_rss_mb": round(service.peak_rss_mb, 1),
        "targets": {"stats_ms": 50},
    })


async def _counted(db, campaign_id, expected: int) -> bool:
    return (await db.fetchval("SELECT coalesce(sum(sent), 0) FROM campaign_api.step_stats WHERE campaign_id = $1",
                              campaign_id)) >= expected


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outcomes", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.outcomes, arguments.events))
