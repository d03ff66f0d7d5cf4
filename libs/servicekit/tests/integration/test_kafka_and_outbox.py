"""The consumer loop, the outbox relay and the migrations, on the real Kafka and PostgreSQL."""

import asyncio
import io
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

from contracts import topics
from contracts.codec import CORRELATION_HEADER, decode, encode
from contracts.events import CampaignScheduled
from servicekit import dlq
from servicekit.database import SHARED_SQL, MigrationEdited, create_pool, migrate
from servicekit.health import HEALTH
from servicekit.kafka import ConsumerLoop, Rejected, Subscription, Topics, correlation_id
from servicekit.outbox import OutboxRelay, add, add_bundle, bundle
from tests.support.kafka import committed_lag, message_count, read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

CAMPAIGN = uuid4()  # one key: one partition, so the order of events is the order they were sent


def scheduled(sends: int, campaign_id=None) -> CampaignScheduled:
    return CampaignScheduled(campaign_id=campaign_id or uuid4(), run_id=uuid4(), recipients=1, sends=sends)


async def test_bad_messages_go_to_the_dlq_and_the_loop_moves_on(kafka_bootstrap, topic_prefix, publisher):
    names = Topics(topic_prefix)
    handled: list[int] = []

    async def handle(event: CampaignScheduled) -> None:
        if event.sends == 13:
            raise Rejected("thirteen is unlucky")
        handled.append(event.sends)

    raw = publisher._producer  # a producer that can also send bytes no event would make
    topic = names.physical(topics.CAMPAIGN_SCHEDULED)
    await raw.send_and_wait(topic, b"{broken", key=b"k")
    await raw.send_and_wait(topic, encode(scheduled(5)).value, key=b"k", headers=[("correlation_id", b"\xff\xfe")])
    await publisher.publish_all([scheduled(1), scheduled(13), scheduled(2)])

    subscription = Subscription("loop-test", {topics.CAMPAIGN_SCHEDULED: handle}, backoff=(0.05,))
    loop = ConsumerLoop(kafka_bootstrap, names, subscription, publisher)
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(stop))
    try:
        dead = await read_all(kafka_bootstrap, names.physical(topics.dlq_of(topics.CAMPAIGN_SCHEDULED)), 3)
        await eventually(lambda: sorted(handled) == [1, 2], "the good events are handled")
    finally:
        stop.set()
        await running
    errors = sorted(dict(record.headers)["dlq.error"].decode() for record in dead)
    assert errors[0] == "rejected: thirteen is unlucky"
    assert errors[1].startswith("undecodable: [{") and errors[2].startswith("undecodable: header 'correlation_id'")
    assert any(record.value == b"{broken" for record in dead), "the DLQ keeps the original bytes"

    # Offsets were committed up to the end: the group would not see any of them again.
    assert await committed_lag(kafka_bootstrap, names.physical(subscription.group),
                               names.physical(topics.CAMPAIGN_SCHEDULED)) == 0


async def test_the_outbox_publishes_every_row_once_in_order(database_url, kafka_bootstrap, topic_prefix, publisher):
    await migrate(database_url, "outbox_test", SHARED_SQL)
    pool = await create_pool(database_url, "outbox_test")
    campaign = uuid4()
    try:
        async with pool.acquire() as connection, connection.transaction():
            await add(connection, *[scheduled(n, campaign) for n in range(50)])
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 1, "the events of one topic added together: one row"
        async with pool.acquire() as connection:
            with pytest.raises(asyncpg.PostgresError):
                async with connection.transaction():  # a rolled-back change leaves no event
                    await add(connection, scheduled(999, campaign))
                    await connection.execute("SELECT 1/0")
        records = await relayed(pool, publisher, 20, kafka_bootstrap, topic_prefix, 50)
    finally:
        await pool.close()
    sends = [decode(topics.CAMPAIGN_SCHEDULED, r.key, r.value).sends for r in records]
    assert sends == list(range(50)), "one campaign's events arrive once each, in order"


async def test_a_bundle_publishes_its_messages_once_in_order_among_single_rows(
        database_url, kafka_bootstrap, topic_prefix, publisher):
    await migrate(database_url, "bundle_test", SHARED_SQL)
    pool = await create_pool(database_url, "bundle_test")
    campaign = uuid4()
    events = [scheduled(n, campaign) for n in range(30)]
    encoded = [encode(event) for event in events]
    try:
        async with pool.acquire() as connection, connection.transaction():
            await add(connection, *events[:5])
            await add_bundle(connection, topics.CAMPAIGN_SCHEDULED, bundle([(m.key, m.value) for m in encoded[5:25]]))
            await add(connection, *events[25:])
        records = await relayed(pool, publisher, 3, kafka_bootstrap, topic_prefix, 30)
    finally:
        await pool.close()
    assert [decode(topics.CAMPAIGN_SCHEDULED, r.key, r.value).sends for r in records] == list(range(30))
    assert all(dict(r.headers)["event_type"] == topics.CAMPAIGN_SCHEDULED.encode() for r in records)


async def test_migrations_apply_once(database_url, tmp_path: Path):
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (id int);")
    (tmp_path / "0002_b.sql").write_text("CREATE TABLE b (id int);")
    assert await migrate(database_url, "m", tmp_path) == ["m/0001_a.sql", "m/0002_b.sql"]
    assert await migrate(database_url, "m", tmp_path) == []
    (tmp_path / "0003_c.sql").write_text("CREATE TABLE c (id int);")
    assert await migrate(database_url, "m", tmp_path) == ["m/0003_c.sql"]


async def test_owners_apply_in_the_order_given_and_an_edited_migration_is_refused(database_url, tmp_path: Path):
    # The service's first file needs the outbox's table: it runs after the outbox's files,
    # whatever the names, and files of the same name in two namespaces are both applied.
    own = tmp_path / "own"
    own.mkdir()
    (own / "0001_outbox.sql").write_text("CREATE INDEX ON outbox (topic);")
    assert await migrate(database_url, "n", SHARED_SQL, own) == [
        *[f"outbox/{path.name}" for path in SHARED_SQL.files()], "n/0001_outbox.sql"]
    (own / "0001_outbox.sql").write_text("CREATE INDEX ON outbox (key);")
    with pytest.raises(MigrationEdited, match="0001_outbox.sql was changed after it was applied to schema n"):
        await migrate(database_url, "n", SHARED_SQL, own)


async def test_a_schema_migrated_before_namespaces_is_read_as_applied(database_url, tmp_path: Path):
    """The layout of schema_migrations until now: the file name alone; the outbox's files
    were named 0000_outbox*.sql. Nothing is applied twice, and checksums are taken up."""
    own = tmp_path / "own"
    own.mkdir()
    (own / "0001_t.sql").write_text("CREATE TABLE t (id int);")
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE SCHEMA old; SET search_path TO old;"
                                 " CREATE TABLE schema_migrations (name text PRIMARY KEY,"
                                 " applied_at timestamptz NOT NULL DEFAULT now())")
        await connection.execute((own / "0001_t.sql").read_text())
        for path in SHARED_SQL.files():
            await connection.execute(path.read_text())
        old_names = ["0000_outbox.sql", "0000_outbox_bundles.sql", "0000_outbox_lz4.sql",
                     "0000_outbox_published_deleted.sql", "0000_outbox_rejected.sql", "0001_t.sql"]
        await connection.executemany("INSERT INTO schema_migrations (name) VALUES ($1)", [(n,) for n in old_names])
        assert await migrate(database_url, "old", SHARED_SQL, own) == []
        rows = await connection.fetch("SELECT namespace, name, checksum FROM old.schema_migrations ORDER BY 1, 2")
    finally:
        await connection.close()
    assert [(row["namespace"], row["name"]) for row in rows] == [
        ("old", "0001_t.sql"), *[("outbox", path.name) for path in SHARED_SQL.files()]]
    assert all(len(row["checksum"]) == 64 for row in rows)


async def test_a_failing_batch_is_retried_one_by_one_and_only_the_bad_event_is_dead_lettered(
    kafka_bootstrap, topic_prefix, publisher
):
    names = Topics(topic_prefix)
    handled: list[int] = []

    async def handle_batch(events: list[CampaignScheduled]) -> None:
        if any(event.sends == 13 for event in events):
            raise Rejected("thirteen is unlucky")
        handled.extend(event.sends for event in events)

    await publisher.publish_all([scheduled(n, campaign_id=uuid4()) for n in (1, 13, 2, 3)])
    subscription = Subscription("batch-test", batch_handlers={topics.CAMPAIGN_SCHEDULED: handle_batch},
                                backoff=(0.05,))
    loop = ConsumerLoop(kafka_bootstrap, names, subscription, publisher)
    stop = asyncio.Event()
    running = asyncio.create_task(loop.run(stop))
    try:
        dead = await read_all(kafka_bootstrap, names.physical(topics.dlq_of(topics.CAMPAIGN_SCHEDULED)), 1)
        await eventually(lambda: sorted(handled) == [1, 2, 3], "the good events are handled")
    finally:
        stop.set()
        await running
    [record] = dead
    assert decode(topics.CAMPAIGN_SCHEDULED, record.key, record.value).sends == 13
    assert await committed_lag(kafka_bootstrap, names.physical(subscription.group),
                               names.physical(topics.CAMPAIGN_SCHEDULED)) == 0


async def test_a_group_reads_again_from_the_start_when_asked_at_assignment(kafka_bootstrap, topic_prefix, publisher):
    names = Topics(topic_prefix)
    await publisher.publish_all([scheduled(n) for n in range(5)])

    async def consume(from_start: bool) -> list[int]:
        seen: list[int] = []

        async def handle(event: CampaignScheduled) -> None:
            seen.append(event.sends)

        async def ask() -> bool:
            return from_start

        subscription = Subscription("replay-test", {topics.CAMPAIGN_SCHEDULED: handle}, from_start_if=ask)
        stop = asyncio.Event()
        running = asyncio.create_task(ConsumerLoop(kafka_bootstrap, names, subscription, publisher).run(stop))
        try:
            await eventually(lambda: len(seen) >= 5, "every event handled")
        finally:
            stop.set()
            await running
        return sorted(seen)

    assert await consume(from_start=False) == [0, 1, 2, 3, 4]
    assert await consume(from_start=True) == [0, 1, 2, 3, 4], "committed, yet read again from the start"


async def relayed(pool, publisher, batch_size: int, kafka_bootstrap: str, topic_prefix: str, expected: int):
    """Runs a relay until the outbox is empty; the campaign.scheduled records it published."""
    stop = asyncio.Event()
    running = asyncio.create_task(OutboxRelay(pool, publisher, batch_size=batch_size).run(stop))
    try:
        records = await read_all(kafka_bootstrap, Topics(topic_prefix).physical(topics.CAMPAIGN_SCHEDULED), expected)
        await eventually(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"),
                         "every outbox row is deleted once published")
    finally:
        stop.set()
        await running
    return records


async def test_a_failing_database_is_waited_for_never_dead_lettered(kafka_bootstrap, topic_prefix, publisher):
    names = Topics(topic_prefix)
    handled: list[int] = []
    failures = {"left": 8}  # the database away for eight tries: longer than any give-up policy would wait
    seen_degraded: list[dict] = []

    async def handle(event: CampaignScheduled) -> None:
        if event.sends == 7 and failures["left"]:
            failures["left"] -= 1
            seen_degraded.append(HEALTH.report())
            raise ConnectionRefusedError("the database is away")
        handled.append(event.sends)

    await publisher.publish_all([scheduled(n, campaign_id=CAMPAIGN) for n in (1, 7, 2)])
    subscription = Subscription("outage-test", {topics.CAMPAIGN_SCHEDULED: handle}, backoff=(0.05, 0.1))
    stop = asyncio.Event()
    running = asyncio.create_task(ConsumerLoop(kafka_bootstrap, names, subscription, publisher).run(stop))
    try:
        await eventually(lambda: handled == [1, 7, 2], "every event handled, in order, once the database is back")
    finally:
        stop.set()
        await running
    assert seen_degraded[-1]["status"] == "degraded" and "the database is away" in str(seen_degraded[-1])
    assert HEALTH.report()["status"] == "ok", "recovered"
    assert await message_count(kafka_bootstrap, names.physical(topics.dlq_of(topics.CAMPAIGN_SCHEDULED))) == 0


async def test_a_stop_finishes_the_chunk_in_flight_commits_it_and_hands_the_rest_back(
    kafka_bootstrap, topic_prefix, publisher
):
    names = Topics(topic_prefix)
    chunks: list[list[int]] = []
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def handle_batch(events: list[CampaignScheduled]) -> None:
        chunks.append([event.sends for event in events])
        in_flight.set()
        await release.wait()

    await publisher.publish_all([scheduled(n, campaign_id=CAMPAIGN) for n in range(10)])
    subscription = Subscription("stop-test", batch_handlers={topics.CAMPAIGN_SCHEDULED: handle_batch},
                                chunks={topics.CAMPAIGN_SCHEDULED: 3})
    stop = asyncio.Event()
    running = asyncio.create_task(ConsumerLoop(kafka_bootstrap, names, subscription, publisher).run(stop))
    await eventually(in_flight.is_set, "a chunk in flight")
    stop.set()  # SIGTERM
    release.set()
    await asyncio.wait_for(running, 30)
    assert chunks == [[0, 1, 2]], "the chunk in flight finished; nothing after it began"
    assert await committed_lag(kafka_bootstrap, names.physical(subscription.group),
                               names.physical(topics.CAMPAIGN_SCHEDULED)) == 7, "the chunk committed, the rest not"


async def test_a_dead_letter_replayed_after_its_cause_is_fixed_is_processed_once(
    kafka_bootstrap, topic_prefix, publisher
):
    names = Topics(topic_prefix)
    handled: list[int] = []
    broken = {"yes": True}  # e.g. a segment that did not exist yet, now created

    async def handle(event: CampaignScheduled) -> None:
        if event.sends == 13 and broken["yes"]:
            raise Rejected("no such segment")
        handled.append(event.sends)

    await publisher.publish_all([scheduled(n, campaign_id=CAMPAIGN) for n in (1, 13, 2)])
    subscription = Subscription("replay-dlq-test", {topics.CAMPAIGN_SCHEDULED: handle})
    stop = asyncio.Event()
    running = asyncio.create_task(ConsumerLoop(kafka_bootstrap, names, subscription, publisher).run(stop))
    try:
        await eventually(lambda: handled == [1, 2], "the good events handled, the bad one dead-lettered")
        listing = io.StringIO()
        assert await dlq.show(kafka_bootstrap, names, topics.CAMPAIGN_SCHEDULED, listing) == 1
        assert "no such segment" in listing.getvalue()
        broken["yes"] = False
        assert await dlq.replay(kafka_bootstrap, names, topics.CAMPAIGN_SCHEDULED) == 1
        await eventually(lambda: handled == [1, 2, 13], "the replayed event handled")
        assert await dlq.replay(kafka_bootstrap, names, topics.CAMPAIGN_SCHEDULED) == 0, "replayed once only"
    finally:
        stop.set()
        await running
    assert handled == [1, 2, 13]


async def test_an_event_added_encoded_goes_out_as_the_event_would_with_the_correlation_of_its_work(
        database_url, kafka_bootstrap, topic_prefix, publisher):
    await migrate(database_url, "encoded_test", SHARED_SQL)
    pool = await create_pool(database_url, "encoded_test")
    campaign = uuid4()
    events = [scheduled(n, campaign) for n in range(3)]
    token = correlation_id.set("corr-42")
    try:
        async with pool.acquire() as connection, connection.transaction():
            await add(connection, encode(events[0]))  # alone: a row of its own
            await add(connection, *(encode(event) for event in events[1:]))  # a bundle
        records = await relayed(pool, publisher, 3, kafka_bootstrap, topic_prefix, 3)
    finally:
        correlation_id.reset(token)
        await pool.close()
    assert [decode(topics.CAMPAIGN_SCHEDULED, r.key, r.value) for r in records] == events
    assert all(dict(r.headers)[CORRELATION_HEADER] == b"corr-42" for r in records)
