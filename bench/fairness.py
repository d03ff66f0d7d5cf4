"""Fairness under backlog: a 10-recipient campaign started while a 200,000-recipient one
is sending. How long until the small one's emails are out?

    uv run python bench/fairness.py [--large 200000] [--small 10] [--warmup 20000]

The five services as processes on the real Kafka and PostgreSQL, sending to Postfix's
smtp-sink. Both campaigns' contacts are imported through the gateway; the large campaign
is activated, and once `--warmup` of its emails are out (the window of sends in flight is
full, send.due has its backlog) the small one is activated. Reported: seconds from the
small campaign's 200 to its last email recorded sent by the mailer (the ledger, on the
database's clock) and to its stats showing every email sent; the large campaign's pace
meanwhile; the scheduler's sends in flight (the backlog of send.due) at its highest.
Target (issue 11): the small campaign's emails all out within 5 s.
"""

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import SmtpSink, fresh_topics, report, servers, until  # noqa: E402

from tests.support.audience import campaign_to  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.servers import create_database, drop_database  # noqa: E402
from tests.support.system import Gateway, System  # noqa: E402


class Audience:
    def __init__(self, gateway: Gateway, size: int) -> None:
        self.gateway, self.size, self.tag = gateway, size, f"b{uuid.uuid4().hex[:10]}"
        self.id: str | None = None

    async def prepare(self) -> "Audience":
        self.id = await campaign_to(
            self.gateway, self.tag, self.size, "Hi {{ first_name }}",
            html='<p>Hello {{ first_name }}, <a href="https://shop.example/new">see what is new</a></p>')
        return self

    async def activate(self) -> None:
        await self.gateway.ok("PUT", f"/api/campaigns/{self.id}/status", {"status": "active"})

    async def sent(self) -> int:
        return (await self.gateway.ok("GET", f"/api/campaigns/{self.id}/stats"))["sent"]


async def main(large: int, small: int, warmup: int) -> None:
    admin_url, bootstrap = servers()
    database_url = await create_database(admin_url, prefix="bench")
    prefix = await fresh_topics(bootstrap)
    sink_port = free_port()
    sink = SmtpSink(sink_port)
    logs = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    system = System(database_url, bootstrap, prefix, sink_port, logs, extra_env={"LOG_LEVEL": "WARNING"})
    db = await asyncpg.connect(database_url)
    try:
        await system.start_all()
        gateway = Gateway(system.gateway)
        print(f"importing {large:,} + {small} contacts ...", flush=True)
        big, little = await Audience(gateway, large).prepare(), await Audience(gateway, small).prepare()
        await big.activate()
        await until(lambda: _at_least(big, warmup), f"{warmup:,} emails of the large campaign", 600, every=0.5)
        in_flight = await _in_flight(system)
        big_before, db_started, started = await big.sent(), await db.fetchval("SELECT now()"), time.monotonic()
        await little.activate()
        db_answered = await db.fetchval("SELECT now()")
        peak, stages = in_flight, {}
        while await little.sent() < small:
            peak = max(peak, await _in_flight(system))
            for stage in await _stages(db, little.id, small):
                stages.setdefault(stage, round(time.monotonic() - started, 2))
            await asyncio.sleep(0.1)
            if time.monotonic() - started > 300:
                raise SystemExit("the small campaign never got its emails")
        by_stats = time.monotonic() - started
        big_pace = (await big.sent() - big_before) / by_stats
        last_sent = await db.fetchval(
            "SELECT max(updated_at) FROM mailer.ledger WHERE campaign_id = $1 AND status = 'sent'",
            uuid.UUID(little.id))
        await gateway.close()
    finally:
        await db.close()
        await asyncio.to_thread(system.stop_all)
        counted = sink.stop()
        await drop_database(admin_url, database_url)
    report("fairness", {
        "large_recipients": large, "small_recipients": small, "large_emails_out_before": big_before,
        "small_all_sent_seconds_ledger": round((last_sent - db_answered).total_seconds(), 2),
        "small_all_sent_seconds_from_request": round((last_sent - db_started).total_seconds(), 2),
        "small_all_counted_in_stats_seconds": round(by_stats, 2),
        "small_stages_seconds": stages,
        "large_emails_per_second_meanwhile": round(big_pace), "scheduler_in_flight_peak": peak,
        "received_by_sink": counted, "target_seconds": 5,
    })


async def _stages(db, campaign_id: str, sends: int) -> list[str]:
    """Which stages all the small campaign's sends have reached: stored by the scheduler,
    emitted on send.due, recorded sent by the mailer."""
    row = await db.fetchrow(
        "SELECT count(*) AS stored, count(*) FILTER (WHERE s.state <> 'pending') AS emitted,"
        " (SELECT count(*) FROM mailer.ledger l WHERE l.campaign_id = $1 AND l.status = 'sent') AS sent"
        " FROM scheduler.sends s WHERE s.campaign_id = $1", uuid.UUID(campaign_id))
    return [stage for stage in ("stored", "emitted", "sent") if row[stage] >= sends]


async def _at_least(audience: Audience, count: int) -> bool:
    return await audience.sent() >= count


async def _in_flight(system: System) -> int:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{system.ports['scheduler']}/healthz") as answer:
        return (await answer.json())["in_flight"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.large, arguments.small, arguments.warmup))
