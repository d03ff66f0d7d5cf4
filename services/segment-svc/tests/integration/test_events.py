"""segment-svc's consumers on the real Kafka and PostgreSQL: evaluating a campaign's
segment into segment.evaluated batches, and contacts arriving on contact.upserted."""

import asyncio

import pytest

from contracts import topics
from contracts.codec import decode
from contracts.events import ContactUpserted
from segment_svc import handlers
from segment_svc.contacts import ContactDraft, ContactPatch
from segment_svc.segments import SegmentDraft
from servicekit.kafka import ConsumerLoop, Subscription, Topics
from tests.support.events import activation
from tests.support.kafka import message_count, read_all
from tests.support.polling import eventually

from .service import dependencies, handle

pytestmark = pytest.mark.integration


async def test_a_segment_is_published_in_batches_once_per_run(pool, publisher, kafka_bootstrap, topic_prefix):
    wired = await dependencies(pool, publisher, evaluation_batch_size=2)
    contacts = wired["audience"]
    matching = {}
    for i in range(7):
        plan = "pro" if i < 5 else "free"
        contact = await contacts.add(ContactDraft(
            email=f"c{i}@example.com", first_name=f"N\u00e9{i}", timezone="Europe/Paris" if i else None,
            marketing_opt_in=i % 2 == 0, attributes={"plan": plan, "visits": i, "tags": ["a", '"quoted"']}))
        if plan == "pro":
            matching[contact.id] = contact
    # Each recipient is stored as JSON text (migration 0005): written again on every change,
    # and escaped whatever the text holds.
    awkward = next(iter(matching))
    matching[awkward] = await contacts.update(awkward, ContactPatch(
        first_name='Zo\u00eb "Z" \\ \n\t\u0001', last_name=None, attributes={"plan": "pro", "visits": 99}))
    segment = await wired["segments"].add(SegmentDraft(name="pro", criteria={
        "operator": "AND", "conditions": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}))
    run = activation(segment.id)

    await handle(handlers.evaluate_segment, run, wired)
    topic = Topics(topic_prefix).physical(topics.SEGMENT_EVALUATED)
    batches = sorted((decode(topics.SEGMENT_EVALUATED, r.key, r.value) for r in await read_all(
        kafka_bootstrap, topic, 3)), key=lambda batch: batch.batch_no)

    assert [(b.batch_no, b.is_last, len(b.recipients)) for b in batches] == [(0, False, 2), (1, False, 2), (2, True, 1)]
    assert (batches[-1].total_matched, batches[-1].opted_in_matched) == (5, 3)
    recipients = {r.contact_id: r for batch in batches for r in batch.recipients}
    assert set(recipients) == set(matching)
    for contact_id, recipient in recipients.items():
        contact = matching[contact_id]
        assert (recipient.email, recipient.first_name, recipient.last_name, recipient.timezone,
                recipient.attributes) == (contact.email, contact.first_name, contact.last_name, contact.timezone,
                                          contact.attributes)
    assert recipients[awkward].attributes["visits"] == 99

    await handle(handlers.evaluate_segment, run, wired)  # redelivered
    assert await message_count(kafka_bootstrap, topic) == 3


async def test_contacts_from_other_systems_are_validated_and_bad_ones_dead_lettered(
        pool, publisher, kafka_bootstrap, topic_prefix):
    wired = await dependencies(pool, publisher)
    contacts = wired["contacts"]
    existing = await wired["audience"].add(ContactDraft(email="old@example.com", first_name="Olga", attributes={"a": 1}))
    names = Topics(topic_prefix)
    raw = publisher._producer  # bytes no event would make
    await raw.send_and_wait(names.physical(topics.CONTACT_UPSERTED), b'{"email": "not an address"}', key=b"x")
    await publisher.publish_all([
        ContactUpserted(email="New@Example.com", first_name="Nia", marketing_opt_in=True, attributes={"plan": "pro"}),
        ContactUpserted(email="old@example.com", marketing_opt_in=True, attributes={"b": 2}),
        ContactUpserted(email="tz@example.com", timezone="Mars/Olympus"),
    ])

    async def on_upserted(event):
        await handle(handlers.upsert_contact, event, wired)

    stop = asyncio.Event()
    loop = ConsumerLoop(kafka_bootstrap, names, Subscription("segment-svc-test", {topics.CONTACT_UPSERTED: on_upserted}),
                        publisher)
    running = asyncio.create_task(loop.run(stop))
    try:
        dead = await read_all(kafka_bootstrap, names.physical(topics.dlq_of(topics.CONTACT_UPSERTED)), 2)
        await eventually(lambda: contacts.id_of("new@example.com"), "the new contact stored")
    finally:
        stop.set()
        await running

    reasons = sorted(dict(record.headers)["dlq.error"].decode() for record in dead)
    assert len(reasons) == 2 and any("email" in r for r in reasons) and any("Mars/Olympus" in r for r in reasons)
    new = await contacts.get(await contacts.id_of("new@example.com"))
    assert (new.first_name, new.marketing_opt_in, new.attributes) == ("Nia", True, {"plan": "pro"})
    old = await contacts.get(existing.id)
    assert (old.first_name, old.marketing_opt_in, old.attributes) == ("Olga", True, {"a": 1, "b": 2})
    assert await contacts.id_of("tz@example.com") is None
