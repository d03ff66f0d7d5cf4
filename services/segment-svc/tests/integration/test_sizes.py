"""Sizes on the real PostgreSQL and Kafka: attributes too large to travel are refused on
every way in (POST, PATCH merged with what is stored, imports, contact.upserted), the
largest valid contact fits a recipient of RECIPIENT_BYTES, and an evaluation cuts its
batches by bytes as well as by count."""

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import topics
from contracts.codec import ATTRIBUTES_BYTES, RECIPIENT_BYTES, decode
from contracts.events import ContactUpserted
from segment_svc import handlers
from segment_svc.contacts import ContactDraft, stored_json_bytes
from segment_svc.segments import SegmentDraft
from servicekit.kafka import ConsumerLoop, Subscription, Topics
from tests.support.events import activation
from tests.support.kafka import message_count, read_all

from .service import dependencies, handle

pytestmark = pytest.mark.integration

LIMIT = f"{ATTRIBUTES_BYTES:,} bytes"


def bio(size: int) -> dict:
    """Attributes of exactly `size` bytes as stored: {"bio": "xxx..."}."""
    return {"bio": "x" * (size - len('{"bio": ""}'))}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**18, 10**18) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(), lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children,
                                                                                     max_size=5), max_leaves=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6))
async def test_attributes_are_measured_as_postgresql_stores_them(pool, attributes):
    if "\x00" in json.dumps(attributes) or "\\u0000" in json.dumps(attributes):
        return  # refused before (servicekit.validation.unstorable)
    try:
        json.dumps(attributes).encode()
    except UnicodeEncodeError:
        return
    stored = await pool.fetchval("SELECT octet_length($1::jsonb::text)", attributes)
    assert stored_json_bytes(attributes) - stored in (0, *range(1, 100)), "never less than PostgreSQL's"
    assert stored_json_bytes(attributes) == stored or "-0.0" in json.dumps(attributes)


async def test_the_largest_contact_fits_a_recipient(pool):
    contacts = (await dependencies(pool))["audience"]
    largest = await contacts.add(ContactDraft(
        email=("é" * 64) + "@" + ".".join(["a" * 60] * 2) + ".fr", first_name="\u0001" * 200,
        last_name='"' * 200, timezone="America/Argentina/ComodRivadavia", marketing_opt_in=True,
        attributes=bio(ATTRIBUTES_BYTES)))
    await pool.execute("UPDATE contacts SET change_seq = 9223372036854775807 WHERE id = $1", largest.id)
    size = await pool.fetchval("SELECT octet_length(recipient) FROM contacts WHERE id = $1", largest.id)
    assert ATTRIBUTES_BYTES < size <= RECIPIENT_BYTES - len(', "send_hour": 23')


async def test_attributes_too_large_are_refused_when_created_or_merged(client, pool):
    answer = await client.post("/api/contacts", json={"email": "big@example.com", "attributes": bio(ATTRIBUTES_BYTES + 1)})
    problem = await answer.json()
    assert answer.status == 422 and problem["errors"][0]["path"] == "$.attributes" and LIMIT in problem["detail"]

    answer = await client.post("/api/contacts", json={"email": "half@example.com", "attributes": bio(40_000)})
    contact = await answer.json()
    answer = await client.patch(f"/api/contacts/{contact['id']}", json={"attributes": {"more": "y" * 30_000}})
    problem = await answer.json()
    assert answer.status == 422 and problem["errors"] == [{"path": "$.attributes", "message": problem["detail"]}]
    assert LIMIT in problem["detail"] and "with those stored" in problem["detail"]
    answer = await client.patch(f"/api/contacts/{contact['id']}", json={"attributes": {"bio": "short"}})
    assert answer.status == 200 and (await answer.json())["attributes"] == {"bio": "short"}, "replacing shrinks"


async def test_an_import_rejects_rows_whose_attributes_are_too_large_alone_or_merged(client, pool):
    contacts = (await dependencies(pool))["audience"]
    await contacts.add(ContactDraft(email="half@example.com", attributes=bio(40_000)))
    body = "\n".join(json.dumps(row) for row in [
        {"email": "new@example.com", "attributes": {"a": 1}},
        {"email": "big@example.com", "attributes": bio(ATTRIBUTES_BYTES + 1)},
        {"email": "half@example.com", "attributes": {"more": "y" * 30_000}},  # merged: over
        {"email": "other@example.com", "attributes": {"b": 2}},
    ]).encode()
    answer = await client.post("/api/contacts/import", data=body, headers={"Content-Type": "application/x-ndjson"})
    report = await answer.json()
    assert (report["inserted"], report["updated"], report["rejected"]) == (2, 0, 2), report
    assert [r["line"] for r in report["rejections"]] == [2, 3]
    assert all(r["reason"].startswith("$.attributes: ") and LIMIT in r["reason"] for r in report["rejections"])
    assert await pool.fetchval("SELECT attributes FROM contacts WHERE email = 'half@example.com'") == bio(40_000)


async def test_a_contact_upserted_too_large_is_dead_lettered_with_the_reason(pool, publisher, kafka_bootstrap,
                                                                             topic_prefix):
    wired = await dependencies(pool, publisher)
    await wired["audience"].add(ContactDraft(email="half@example.com", attributes=bio(40_000)))
    await publisher.publish_all([
        ContactUpserted(email="big@example.com", attributes=bio(ATTRIBUTES_BYTES + 1)),
        ContactUpserted(email="half@example.com", attributes={"more": "y" * 30_000}),
        ContactUpserted(email="fine@example.com", attributes={"a": 1}),
    ])

    async def on_upserted(event):
        await handle(handlers.upsert_contact, event, wired)

    names, stop = Topics(topic_prefix), asyncio.Event()
    loop = ConsumerLoop(kafka_bootstrap, names, Subscription("segment-svc-sizes", {topics.CONTACT_UPSERTED: on_upserted}),
                        publisher)
    running = asyncio.create_task(loop.run(stop))
    try:
        dead = await read_all(kafka_bootstrap, names.physical(topics.dlq_of(topics.CONTACT_UPSERTED)), 2)
    finally:
        stop.set()
        await running
    reasons = [dict(record.headers)["dlq.error"].decode() for record in dead]
    assert len(reasons) == 2 and all(LIMIT in reason for reason in reasons), reasons


async def test_an_evaluation_cuts_its_batches_by_bytes_under_the_message_size(pool, publisher, kafka_bootstrap,
                                                                             topic_prefix):
    message_bytes = RECIPIENT_BYTES + 2_000  # the smallest the setting takes: ~70 of these contacts
    wired = await dependencies(pool, publisher, kafka_message_bytes=message_bytes)
    contacts, segments = wired["audience"], wired["segments"]
    for i in range(300):
        await contacts.add(ContactDraft(email=f"c{i}@example.com", attributes={"plan": "pro", **bio(1_000)}))
    segment = await segments.add(SegmentDraft(name="pro", criteria={
        "operator": "AND", "conditions": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}))
    await handle(handlers.evaluate_segment, activation(segment.id), wired)

    topic = Topics(topic_prefix).physical(topics.SEGMENT_EVALUATED)
    records = await read_all(kafka_bootstrap, topic, await message_count(kafka_bootstrap, topic))
    batches = sorted((decode(topics.SEGMENT_EVALUATED, r.key, r.value) for r in records), key=lambda b: b.batch_no)
    assert len(batches) > 4 and [b.batch_no for b in batches] == list(range(len(batches)))
    assert all(record.serialized_value_size + record.serialized_key_size < message_bytes - 200 for record in records)
    assert [b.is_last for b in batches] == [False] * (len(batches) - 1) + [True] and batches[-1].total_matched == 300
    assert len({r.contact_id for b in batches for r in b.recipients}) == 300


async def test_a_contact_stored_too_large_before_the_limit_is_left_out_and_logged(pool, publisher, kafka_bootstrap,
                                                                                 topic_prefix, capsys):
    wired = await dependencies(pool, publisher)
    contacts, segments = wired["audience"], wired["segments"]
    for i in range(3):
        await contacts.add(ContactDraft(email=f"c{i}@example.com", attributes={"plan": "pro"}))
    await pool.execute("ALTER TABLE contacts DROP CONSTRAINT recipient_fits_a_message")
    await pool.execute("INSERT INTO contacts (id, email, attributes) VALUES (gen_random_uuid(), 'old@example.com', $1)",
                       {"plan": "pro", **bio(1_100_000)})  # over a whole message
    segment = await segments.add(SegmentDraft(name="pro", criteria={
        "operator": "AND", "conditions": [{"field": "attributes.plan", "op": "eq", "value": "pro"}]}))
    await handle(handlers.evaluate_segment, activation(segment.id), wired)

    topic = Topics(topic_prefix).physical(topics.SEGMENT_EVALUATED)
    [record] = await read_all(kafka_bootstrap, topic, 1)
    batch = decode(topics.SEGMENT_EVALUATED, record.key, record.value)
    assert len(batch.recipients) == 3 and batch.is_last and batch.total_matched == 4
    assert "recipient_too_large_left_out" in capsys.readouterr().out
