"""The lifecycle with thousands of emails queued, through the five services, with the
default retry settings and an SMTP server that can be slowed to ~200 messages/s."""

import time

import asyncpg
import pytest

from tests.support.audience import campaign_to
from tests.support.polling import eventually, never
from tests.support.stack import running_system
from tests.support.system import wait_healthy

pytestmark = pytest.mark.e2e

SLOW = 0.08  # seconds per message on each of the mailer's 16 connections: ~200 messages/s


@pytest.fixture(scope="module")
async def system(postgres_url, kafka_bootstrap, tmp_path_factory):
    async with running_system(postgres_url, kafka_bootstrap, tmp_path_factory.mktemp("logs")) as running:
        yield running


class Campaign:
    """`size` contacts of a domain of their own, imported as a file, and a campaign of one
    email to them starting now."""

    def __init__(self, system, size: int) -> None:
        self.running, self.gateway, self.smtp = system
        self.size = size
        self.tag = f"t{time.monotonic_ns()}"
        self.id: str | None = None

    async def prepare(self) -> "Campaign":
        self.id = await campaign_to(self.gateway, self.tag, self.size)
        return self

    async def set(self, status: str) -> float:
        """PUT /status; returns when the 200 came (time.monotonic, the SMTP server's clock)."""
        await self.gateway.ok("PUT", f"/api/campaigns/{self.id}/status", {"status": status})
        return time.monotonic()

    def received(self) -> list:
        return [mail for mail in self.smtp.received if mail.envelope_to[0].endswith(f"@{self.tag}.example.com")]

    def distinct(self) -> int:
        return len({str(mail.message["Message-ID"]) for mail in self.received()})

    async def stats(self) -> dict:
        return await self.gateway.ok("GET", f"/api/campaigns/{self.id}/stats")

    async def completed(self) -> bool:
        return (await self.gateway.ok("GET", f"/api/campaigns/{self.id}"))["status"] == "completed"

    async def settled(self) -> bool:
        """Nothing in flight: every send the scheduler emitted has its answer."""
        health = await wait_healthy(self.running.ports["scheduler"], self.running.processes["scheduler"])
        return health["in_flight"] == 0


def reconciles(stats: dict) -> bool:
    parts = ("sent", "failed", "skipped_no_consent", "cancelled", "deferred", "held", "not_yet_sent")
    return stats["scheduled"] is not None and sum(stats[part] for part in parts) == stats["scheduled"]


async def stop_while_sending(campaign: Campaign, after: int, *statuses: str) -> float:
    """Activates the campaign on a slow SMTP server and, once `after` emails are out, sets
    `statuses` one after the other; returns when the first one's 200 came, once every send
    emitted meanwhile has its answer."""
    campaign.smtp.handler.delay = SLOW
    try:
        await campaign.set("active")
        await eventually(lambda: len(campaign.received()) >= after, f"{after} emails out", timeout=90)
        stopped = [await campaign.set(status) for status in statuses][0]
        await eventually(campaign.settled, "every emitted send answered", timeout=90, every=0.5)
        return stopped
    finally:
        campaign.smtp.handler.delay = 0


def late(campaign: Campaign, since: float) -> list[float]:
    """How long after `since` each email came that came more than two seconds after it."""
    return [mail.at - since for mail in campaign.received() if mail.at > since + 2.0]


async def test_a_pause_stops_a_backlog_of_20000_within_two_seconds_and_resume_sends_the_rest_once(system):
    campaign = await Campaign(system, 20_000).prepare()
    paused = await stop_while_sending(campaign, 600, "paused")
    stats = await eventually(campaign.stats, "stats")
    print(f"\npause: {sum(1 for m in campaign.received() if m.at > paused)} emails after the 200, all within 2 s;"
          f" held {stats['held']}, sent {stats['sent']} of 20,000")
    assert not late(campaign, paused), f"the last {max(late(campaign, paused)):.1f} s after the pause's 200"
    assert reconciles(stats), stats
    await campaign.set("active")
    await eventually(lambda: campaign.distinct() == 20_000, "all 20,000 emails", timeout=240, every=0.5)
    await eventually(campaign.completed, "the campaign completes", timeout=60)
    assert len(campaign.received()) == 20_000, "each email exactly once"
    stats = await eventually(campaign.stats, "stats")
    assert (stats["sent"], stats["held"], stats["not_yet_sent"]) == (20_000, 0, 0) and reconciles(stats), stats


async def test_a_campaign_completed_by_hand_sends_nothing_more_and_its_stats_reconcile(system):
    campaign = await Campaign(system, 3_000).prepare()
    paused = await stop_while_sending(campaign, 300, "paused", "completed")
    assert not late(campaign, paused)
    sent = campaign.distinct()

    async def counted():
        stats = await campaign.stats()
        return stats["sent"] == sent and stats

    stats = await eventually(counted, "the stats count every email that went out", timeout=30)
    assert stats["status"] == "completed" and reconciles(stats), stats
    assert (stats["cancelled"], stats["held"], stats["not_yet_sent"]) == (3_000 - sent, 0, 0), stats
    assert len(campaign.received()) == sent, "each email at most once"


async def test_a_pause_while_the_scheduler_is_down_holds_when_it_comes_back(system):
    running, _, _ = system
    campaign = await Campaign(system, 50).prepare()
    scheduler = running.processes["scheduler"]
    scheduler.terminate()  # by its pid
    scheduler.wait(timeout=30)
    try:
        await campaign.set("active")
        await campaign.set("paused")
    finally:
        running.start("scheduler")
        await running.wait_healthy("scheduler")
    database = await asyncpg.connect(running.database_url)
    try:
        await eventually(lambda: database.fetchval(
            "SELECT count(*) = 50 FROM scheduler.sends s JOIN scheduler.runs r USING (run_id)"
            " WHERE r.campaign_id = $1", campaign.id), "the scheduler stored the 50 sends", timeout=60)
    finally:
        await database.close()
    await never(campaign.received, "an email of the paused campaign", during=5)
    await campaign.set("active")
    await eventually(lambda: campaign.distinct() == 50, "the 50 emails after resume", timeout=60)
    await eventually(campaign.completed, "the campaign completes", timeout=60)
    assert len(campaign.received()) == 50


async def test_contacts_imported_just_before_the_activation_get_their_email_without_a_deferral(system):
    running, _, _ = system
    campaign = await Campaign(system, 5_000).prepare()  # the import, then at once:
    activated = await campaign.set("active")
    await eventually(lambda: campaign.distinct() == 5_000, "all 5,000 emails", timeout=120, every=0.5)
    took = max(mail.at for mail in campaign.received()) - activated
    database = await asyncpg.connect(running.database_url)
    try:
        attempts = await database.fetchval(
            "SELECT max(attempt) FROM mailer.ledger WHERE campaign_id = $1", campaign.id)
    finally:
        await database.close()
    stats = await eventually(campaign.stats, "stats")
    print(f"\nimport then activate: 5,000 emails in {took:.1f} s after the activation, max attempt {attempts}")
    assert attempts == 1 and stats["deferred"] == 0, "no email waited for its consent"
    assert len(campaign.received()) == 5_000
