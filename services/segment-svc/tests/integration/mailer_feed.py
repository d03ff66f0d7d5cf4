"""What segment-svc tells the mailer of its contacts: the contact.changed events waiting in
its outbox (bundles opened), and the recipients an evaluation publishes."""

from uuid import UUID

from contracts import topics
from contracts.codec import decode
from contracts.events import ContactChanged, Recipient
from segment_svc import handlers
from segment_svc.segments import SegmentDraft
from servicekit.kafka import Topics
from servicekit.outbox import unbundle
from tests.support.events import activation
from tests.support.kafka import message_count, read_all

from .service import dependencies, handle

EVERYONE = {"operator": "AND", "conditions": [{"field": "email", "op": "contains", "value": "@"}]}


async def told(pool) -> list[ContactChanged]:
    """The outbox's events, in the order they will be published."""
    rows = await pool.fetch("SELECT topic, key, value, headers, messages FROM outbox ORDER BY id")
    assert all(row["headers"][0] == ["event_type", topics.CONTACT_CHANGED] for row in rows)
    messages = [(row["topic"], key, value) for row in rows
                for key, value in (unbundle(row["messages"]) if row["messages"] else [(row["key"], row["value"])])]
    events = [decode(topic, key, value) for topic, key, value in messages]
    assert [key.decode() for _, key, _ in messages] == [str(event.contact_id) for event in events]
    return events


async def evaluated(pool, publisher, kafka_bootstrap: str, topic_prefix: str) -> dict[UUID, Recipient]:
    """Every contact as a campaign activated now receives it, by contact id."""
    wired = await dependencies(pool, publisher, evaluation_batch_size=1000)
    segment = await wired["segments"].add(SegmentDraft(name="everyone", criteria=EVERYONE))
    run = activation(segment.id)
    await handle(handlers.evaluate_segment, run, wired)
    topic = Topics(topic_prefix).physical(topics.SEGMENT_EVALUATED)
    records = await read_all(kafka_bootstrap, topic, await message_count(kafka_bootstrap, topic))
    batches = [batch for batch in (decode(topics.SEGMENT_EVALUATED, r.key, r.value) for r in records)
               if batch.run_id == run.run_id]
    assert batches and batches[-1].is_last, "the run's segment.evaluated never arrived"
    return {recipient.contact_id: recipient for batch in batches for recipient in batch.recipients}
