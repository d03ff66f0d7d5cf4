"""End-to-end throughput: one campaign of N personalised emails with a tracked link, from
the activation request to the last email at Postfix's smtp-sink.

    uv run python bench/campaign.py [--contacts 100000] [--runs 3] [--first 1000000] [--mailers 1] [--profile DIR]

The five services as processes on the real Kafka and PostgreSQL (one database for all
the runs, so later runs meet the sends of earlier ones), 16 SMTP connections. Each run
imports N opted-in contacts through the gateway (not timed), makes a segment of exactly
them and a one-email campaign (subject "Hi {{ first_name }}", a link that the mailer
rewrites into a signed tracking link), activates it, and reports, on the database's
clock: seconds to the first email recorded sent, emails/s from the activation to the
last, seconds to `completed`; each process's CPU share and peak RSS over the run
(PostgreSQL and Kafka: every process of that name on the machine); the rows PostgreSQL
wrote per email (pg_stat_database: inserted + updated + deleted); the scheduler's sends in
flight at their highest (the backlog of send.due). The sink's count is checked against N.
Target (issue 13): median of 3 at 100,000 >= 4,000 emails/s.
"""

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import SmtpSink, cpu_seconds_of, fresh_topics, report, servers, until  # noqa: E402

from tests.support.audience import campaign_to  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.servers import create_database, drop_database  # noqa: E402
from tests.support.system import Gateway, System  # noqa: E402

HTML = '<p>Hello {{ first_name }}, <a href="https://shop.example/new">see what is new</a></p>'


class Sampler:
    """Peak RSS and CPU seconds of the system's processes, sampled every 0.1 s."""

    def __init__(self, system: System) -> None:
        self.pids = {name: process.pid for name, process in system.processes.items()}
        self.peak_rss_mb = dict.fromkeys(self.pids, 0.0)
        self._running = True
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while self._running:
            for name, pid in self.pids.items():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak_rss_mb[name] = max(self.peak_rss_mb[name], int(line.split()[1]) / 1024)
                except FileNotFoundError:
                    pass
            time.sleep(0.1)

    def cpu_seconds(self) -> dict[str, float]:
        seconds = {}
        for name, pid in self.pids.items():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        seconds["postgresql"], seconds["kafka"] = cpu_seconds_of("postgres"), cpu_seconds_of("java")
        return seconds

    def reset_peaks(self) -> None:
        self.peak_rss_mb = dict.fromkeys(self.pids, 0.0)

    def stop(self) -> None:
        self._running = False


async def rows_written(db: asyncpg.Connection) -> int:
    return await db.fetchval("SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database"
                             " WHERE datname = current_database()")


async def settled_rows_written(db: asyncpg.Connection) -> int:
    """The counter once it stops moving: backends report their counts a moment after commit."""
    last = await rows_written(db)
    for _ in range(50):
        await asyncio.sleep(0.2)
        now = await rows_written(db)
        if now == last:
            return now
        last = now
    return last


async def in_flight(system: System) -> int:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{system.ports['scheduler']}/healthz") as answer:
        return (await answer.json()).get("in_flight", 0)


class Profiles:
    """py-spy attached to every service from the activation to `completed` (--profile DIR):
    DIR/<run>-<service>.txt, collapsed stacks (`py-spy record -f raw`), for flame graphs or
    a count of where the time goes."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._spies: list[subprocess.Popen] = []

    def start(self, system: System, run: int) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, process in system.processes.items():
            self._spies.append(subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(process.pid), "--rate", "50", "--format", "raw", "--nonblocking",
                 "--output", str(self.folder / f"{run}-{name}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for spy in self._spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled, and exits
        for spy in self._spies:
            spy.wait(timeout=60)
        self._spies = []


async def one_run(system: System, gateway: Gateway, db: asyncpg.Connection, sampler: Sampler, contacts: int,
                  profiles: Profiles, number: int) -> dict:
    tag = f"e{uuid.uuid4().hex[:10]}"
    print(f"importing {contacts:,} contacts ...", flush=True)
    campaign_id = await campaign_to(gateway, tag, contacts, "Hi {{ first_name }}", html=HTML)
    campaign = uuid.UUID(campaign_id)
    await until(lambda: _idle(system), "the system idle", 600, every=0.5)
    rows_before, cpu_before = await settled_rows_written(db), sampler.cpu_seconds()
    sampler.reset_peaks()
    print("activating ...", flush=True)
    activated_at = await db.fetchval("SELECT now()")
    started = time.monotonic()
    profiles.start(system, number)
    await gateway.ok("PUT", f"/api/campaigns/{campaign_id}/status", {"status": "active"})
    peak_in_flight = 0
    while (await gateway.ok("GET", f"/api/campaigns/{campaign_id}"))["status"] != "completed":
        peak_in_flight = max(peak_in_flight, await in_flight(system))
        await asyncio.sleep(0.25)
        if time.monotonic() - started > 3600:
            raise SystemExit("the campaign never completed")
    completed_seconds = time.monotonic() - started
    profiles.stop()
    cpu = {name: seconds - cpu_before[name] for name, seconds in sampler.cpu_seconds().items()}
    first, last, sent = await db.fetchrow(
        "SELECT min(updated_at), max(updated_at), count(*) FROM mailer.ledger WHERE campaign_id = $1"
        " AND status = 'sent'", campaign)
    rows = await settled_rows_written(db) - rows_before
    sending_seconds = (last - activated_at).total_seconds()
    stats = await gateway.ok("GET", f"/api/campaigns/{campaign_id}/stats")
    return {
        "contacts": contacts, "sent": sent, "stats_sent": stats["sent"],
        "emails_per_second": round(sent / sending_seconds),
        "first_email_seconds": round((first - activated_at).total_seconds(), 2),
        "last_email_seconds": round(sending_seconds, 2),
        "completed_seconds": round(completed_seconds, 2),
        "cpu_share": {name: round(seconds / completed_seconds, 2) for name, seconds in cpu.items()},
        "cpu_ms_per_email": round(1000 * sum(cpu.values()) / sent, 3),
        "peak_rss_mb": {name: round(mb, 1) for name, mb in sampler.peak_rss_mb.items()},
        "postgres_rows_written_per_email": round(rows / sent, 2),
        "scheduler_in_flight_peak": peak_in_flight,
    }


async def _idle(system: System) -> bool:
    return await in_flight(system) == 0


async def main(arguments: argparse.Namespace) -> None:
    contacts, runs, mailers, first = arguments.contacts, arguments.runs, arguments.mailers, arguments.first
    admin_url, bootstrap = servers()
    database_url = await create_database(admin_url, prefix="bench")
    prefix = await fresh_topics(bootstrap)
    sink_port = free_port()
    sink = SmtpSink(sink_port)
    logs = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    system = System(database_url, bootstrap, prefix, sink_port, logs,
                    extra_env={"LOG_LEVEL": "WARNING", "SMTP_CONNECTIONS": "16"})
    db = await asyncpg.connect(database_url)
    results, before = [], None
    try:
        await system.start_all(replicas=mailers, replicated=("mailer",))
        gateway = Gateway(system.gateway)
        sampler = Sampler(system)
        if first:  # the earlier sends the measured runs meet in the database
            before = await one_run(system, gateway, db, sampler, first, Profiles(arguments.profile), 0)
            print(f"first run: {before}", flush=True)
        for number in range(1, runs + 1):
            result = await one_run(system, gateway, db, sampler, contacts, Profiles(arguments.profile), number)
            print(f"run {number}: {result}", flush=True)
            results.append(result)
        sampler.stop()
        await gateway.close()
    finally:
        await db.close()
        await asyncio.to_thread(system.stop_all)
        counted = sink.stop()
        if not (arguments.keep or os.environ.get("BENCH_KEEP_DATABASE") == "1"):
            await drop_database(admin_url, database_url)
    rates = [result["emails_per_second"] for result in results]
    name = f"campaign-{contacts}" + (f"-after-{first}" if first else "") + (f"-{mailers}-mailers" if mailers > 1 else "")
    report(name, {
        "contacts": contacts, "mailers": mailers, "first_run": before, "runs": results, "emails_per_second": rates,
        "median_emails_per_second": round(statistics.median(rates)),
        "received_by_sink": counted, "expected_at_sink": contacts * runs + first, "logs": str(logs),
        "targets": {"median_emails_per_second": 4000, "first_email_seconds": 2, "peak_rss_mb": 300},
    })


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--first", type=int, default=0,
                        help="a campaign of so many contacts first, reported apart: the runs then meet its sends")
    parser.add_argument("--mailers", type=int, default=1, help="mailer processes side by side")
    parser.add_argument("--profile", type=Path, help="py-spy on every service while sending, into this folder")
    parser.add_argument("--keep", action="store_true", help="keep the database (BENCH_KEEP_DATABASE=1 too)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments))
