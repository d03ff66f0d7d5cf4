"""Faults from outside: the five services as processes on the real PostgreSQL and Kafka of
the chaos instance and a real SMTP server; a process killed by its pid, a server stopped,
and the count at the SMTP server. Each scenario checks that nothing is lost, that no more
emails are duplicated than the mailer's `resent_after_crash`, that the campaign completes
and that no dead-letter topic holds anything. Small in `make test`, full in `make chaos`."""

import asyncio
import json
import re
import time
import uuid

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import ALL_TOPICS, DLQ_SUFFIX
from servicekit.kafka import Topics
from servicekit.topics import ensure_topics
from tests.chaos.conftest import KAFKA_BOOTSTRAP, POSTGRES_URL
from tests.support.audience import campaign_to
from tests.support.kafka import delete_topics, message_count
from tests.support.polling import eventually
from tests.support.scale import sized
from tests.support.servers import create_database, drop_database
from tests.support.smtp import SmtpServer
from tests.support.system import Gateway, System

pytestmark = pytest.mark.e2e


class Scenario:
    """One system of its own (database, topics, processes, SMTP server) and one campaign."""

    def __init__(self, system: System, gateway: Gateway, smtp: SmtpServer) -> None:
        self.system, self.gateway, self.smtp = system, gateway, smtp
        self.tag = f"t{uuid.uuid4().hex[:10]}"
        self.campaign: str | None = None
        self.size = 0

    async def campaign_of(self, size: int, subject: str = "Hi {{ first_name }}", without_first_name: int = 0) -> None:
        self.size = size
        self.campaign = await campaign_to(
            self.gateway, self.tag, size, subject, without_first_name=without_first_name,
            html='<p>Hello, <a href="https://shop.example/new">see what is new</a></p>')

    async def activate(self) -> None:
        await self.gateway.ok("PUT", f"/api/campaigns/{self.campaign}/status", {"status": "active"})

    def received(self) -> list:
        return [mail for mail in self.smtp.received if mail.envelope_to[0].endswith(f"@{self.tag}.example.com")]

    def distinct(self) -> int:
        return len({str(mail.message["Message-ID"]) for mail in self.received()})

    async def completed(self) -> bool:
        try:
            return (await self.gateway.ok("GET", f"/api/campaigns/{self.campaign}"))["status"] == "completed"
        except aiohttp.ClientError:  # campaign-api is being restarted
            return False

    async def resent_after_crash(self) -> int:
        database = await asyncpg.connect(self.system.database_url)
        try:
            return await database.fetchval("SELECT count(*) FROM mailer.resent_after_crash")
        finally:
            await database.close()

    async def dead_letters(self) -> dict[str, int]:
        names = Topics(self.system.topic_prefix)
        counts = {spec.name: await message_count(KAFKA_BOOTSTRAP, names.physical(spec.name))
                  for spec in ALL_TOPICS if spec.name.endswith(DLQ_SUFFIX)}
        return {topic: count for topic, count in counts.items() if count}

    async def kill(self, name: str) -> None:
        """SIGKILL by pid, then the same service started again."""
        process = self.system.processes[name]
        process.kill()
        await asyncio.to_thread(process.wait)
        self.system.start(name)
        await self.system.wait_healthy(name, timeout=120)

    async def all_delivered(self, timeout: float) -> dict:
        """Waits for every email and the campaign's completion; returns the figures and
        checks what every scenario promises."""
        await eventually(lambda: self.distinct() >= self.size, f"{self.size} emails", timeout=timeout, every=0.5)
        await eventually(self.completed, "the campaign completes", timeout=120, every=0.5)
        figures = {"emails": self.size, "distinct": self.distinct(), "received": len(self.received()),
                   "resent_after_crash": await self.resent_after_crash(), "dead_letters": await self.dead_letters()}
        figures["duplicates"] = figures["received"] - figures["distinct"]
        print(f"\n{figures}")
        assert figures["distinct"] == self.size, "nothing lost"
        assert figures["duplicates"] <= figures["resent_after_crash"], "duplicates only of sends caught mid-SMTP"
        assert not figures["dead_letters"], "no good event dead-lettered"
        return figures


@pytest.fixture
async def scenario(chaos_servers, tmp_path):
    """A fresh system on the chaos servers; `await scenario(replicas=2)` for two of each consumer."""
    systems = []

    async def start(replicas: int = 1, auth: tuple[str, str] | None = None, **env: str) -> Scenario:
        database_url = await create_database(POSTGRES_URL)
        prefix = f"c{uuid.uuid4().hex[:10]}."
        await ensure_topics(KAFKA_BOOTSTRAP, prefix)
        smtp = SmtpServer(auth=auth).__enter__()
        if auth:
            env = {"SMTP_USERNAME": auth[0], "SMTP_PASSWORD": auth[1], **env}
        system = System(database_url, KAFKA_BOOTSTRAP, prefix, smtp.port, tmp_path,
                        extra_env={"SMTP_RETRY_INITIAL_SECONDS": "1", "SMTP_RETRY_MAX_SECONDS": "2", **env})
        systems.append((system, smtp))
        await system.start_all(replicas)
        return Scenario(system, Gateway(system.gateway), smtp)

    yield start
    for system, smtp in systems:
        await asyncio.to_thread(system.stop_all)
        smtp.__exit__(None, None, None)
        await drop_database(POSTGRES_URL, system.database_url)
        await delete_topics(KAFKA_BOOTSTRAP, system.topic_prefix)


async def progress(scenario: Scenario, share: float, timeout: float = 120) -> None:
    count = int(scenario.size * share)
    await eventually(lambda: len(scenario.received()) >= count, f"{count} emails out", timeout=timeout, every=0.2)


async def test_each_service_killed_in_turn_loses_nothing(scenario):
    chaos = await scenario()
    await chaos.campaign_of(sized(3_000, 20_000))
    chaos.smtp.handler.delay = 0.04  # ~400 emails/s: the campaign lasts while the services die
    await chaos.activate()
    for step, name in enumerate(["segment-svc", "mailer", "scheduler", "campaign-api", "flow-engine"]):
        await progress(chaos, (step + 1) / 7)
        await chaos.kill(name)
    chaos.smtp.handler.delay = 0
    await chaos.all_delivered(timeout=sized(180, 600))


async def test_the_database_then_the_broker_stopped_for_a_while_loses_nothing(scenario, chaos_servers):
    postgres, kafka = chaos_servers
    outage = sized(10, 30)
    chaos = await scenario()
    await chaos.campaign_of(sized(3_000, 10_000))
    chaos.smtp.handler.delay = 0.04
    await chaos.activate()
    await progress(chaos, 0.2)
    await postgres.stop()
    try:
        stopped = time.monotonic()
        said = await eventually(lambda: _degraded(chaos), "the mailer says it is degraded", timeout=outage)
        print(f"\nwith the database away: {said['degraded']}")
        await asyncio.sleep(max(0.0, outage - (time.monotonic() - stopped)))  # the fault: PostgreSQL away this long
    finally:
        await postgres.start()
    await progress(chaos, 0.4, timeout=180)
    await kafka.stop()
    try:
        await asyncio.sleep(outage)  # the broker away this long
    finally:
        await kafka.start()
    chaos.smtp.handler.delay = 0
    await chaos.all_delivered(timeout=sized(240, 600))


async def test_two_of_every_consuming_service_share_the_work_and_send_each_email_once(scenario):
    chaos = await scenario(replicas=2)
    await chaos.campaign_of(sized(4_000, 20_000))
    await chaos.activate()
    figures = await chaos.all_delivered(timeout=sized(180, 600))
    assert figures["received"] == chaos.size, "exactly once"
    sent_by = [await mailer_sent(chaos.system.ports[name]) for name in ("mailer", "mailer#2")]
    print(f"sent by each mailer: {sent_by}")
    assert all(sent_by), f"both mailers sent: {sent_by}"


async def mailer_sent(port: int) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as answer:
        found = re.search(r'mailer_sends_total\{status="sent"\} ([0-9.e+]+)', await answer.text())
    return int(float(found.group(1))) if found else 0


async def test_a_contact_upserted_with_a_header_not_utf8_is_dead_lettered_and_the_rest_goes_on(scenario):
    chaos = await scenario()
    names = Topics(chaos.system.topic_prefix)
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA_BOOTSTRAP)
    await producer.start()
    try:
        topic = names.physical("contact.upserted")
        bad, good = f"bad@{chaos.tag}.example.com", f"good@{chaos.tag}.example.com"
        await producer.send_and_wait(topic, json.dumps({"event_type": "contact.upserted", "email": bad}).encode(),
                                     key=bad.encode(), headers=[("correlation_id", b"\xff\xfe\xfd")])
        await producer.send_and_wait(topic, json.dumps({"event_type": "contact.upserted", "email": good}).encode(),
                                     key=good.encode())
    finally:
        await producer.stop()

    async def stored(email: str) -> bool:
        database = await asyncpg.connect(chaos.system.database_url)
        try:
            return await database.fetchval("SELECT count(*) = 1 FROM segment.contacts WHERE email = $1", email)
        finally:
            await database.close()

    await eventually(lambda: stored(good), "the good contact.upserted is handled", timeout=60)
    assert await chaos.dead_letters() == {"contact.upserted.dlq": 1}
    assert not await stored(bad), "the bad one made no contact"
    assert chaos.system.processes["segment-svc"].poll() is None, "segment-svc goes on"


async def test_contacts_a_template_cannot_render_for_fail_alone_and_the_others_get_one_email(scenario):
    chaos = await scenario()
    await chaos.campaign_of(200, subject="Hi {{ first_name.title() }}", without_first_name=20)
    await chaos.activate()
    await eventually(chaos.completed, "the campaign completes", timeout=120, every=0.5)

    async def counted():
        stats = await chaos.gateway.ok("GET", f"/api/campaigns/{chaos.campaign}/stats")
        return stats["sent"] + stats["failed"] == 200 and stats

    stats = await eventually(counted, "every outcome counted", timeout=30)
    print(f"\ntemplate: sent {stats['sent']}, failed {stats['failed']}, received {len(chaos.received())}")
    assert (stats["sent"], stats["failed"]) == (180, 20)
    assert len(chaos.received()) == chaos.distinct() == 180, "one email each"
    assert not await chaos.dead_letters()


async def test_smtp_auth_refused_for_a_while_delays_delivery_and_fails_no_one(scenario):
    chaos = await scenario(auth=("campaigns", "secret"))
    await chaos.campaign_of(sized(1_000, 5_000))
    refused_for = sized(15, 60)
    chaos.smtp.refuse_auth(refused_for)
    await chaos.activate()
    health = await eventually(lambda: _degraded(chaos), "the mailer says it is degraded", timeout=60)
    await chaos.all_delivered(timeout=refused_for + sized(120, 300))
    stats = await chaos.gateway.ok("GET", f"/api/campaigns/{chaos.campaign}/stats")
    print(f"auth refused {chaos.smtp.refused['auth']} times over {refused_for} s; health then: {health}")
    assert stats["failed"] == 0 and stats["sent"] == chaos.size, stats


async def _degraded(chaos: Scenario) -> dict | None:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{chaos.system.ports['mailer']}/healthz") as answer:
        health = await answer.json()
    return health if health["status"] == "degraded" else None
