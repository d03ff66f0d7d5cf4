"""Send-time suggestions learned from synthetic engagement history on the real PostgreSQL:
each contact has a known preferred hour, their opens and clicks fall there or, as noise,
anywhere in the week; the history arrives as email.engagement events would."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer

from contracts import topics
from contracts.codec import decode
from contracts.enums import EngagementKind
from contracts.events import EmailEngagement
from segment_svc import handlers
from segment_svc.contacts import ContactDraft
from segment_svc.segments import SegmentDraft
from segment_svc.send_time import contact_best_hour, segment_profile
from servicekit.kafka import Topics
from tests.support.events import activation
from tests.support.kafka import read_all

from .service import app_of, dependencies, handle

pytestmark = pytest.mark.integration

ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", None]
MONDAY = datetime(2026, 11, 2)  # a Monday, local time


@pytest.fixture
async def setting(service_pool):
    pool = await service_pool("segment", "segment_svc")
    wired = await dependencies(pool, evaluation_batch_size=25)
    async with TestClient(TestServer(app_of(wired))) as client:
        yield wired, client


async def segment_of(wired, tag: str, people: int) -> tuple[str, list]:
    contacts = []
    for i in range(people):
        contacts.append(await wired["audience"].add(ContactDraft(
            email=f"{tag}{i}@example.com", timezone=ZONES[i % len(ZONES)], attributes={"group": tag})))
    segment = await wired["segments"].add(SegmentDraft(name=tag, criteria={
        "operator": "AND", "conditions": [{"field": "attributes.group", "op": "eq", "value": tag}]}))
    return str(segment.id), contacts


async def engage(wired, contact, local: datetime, kind=EngagementKind.OPEN, machine=False) -> EmailEngagement:
    """An open or click at this local time of the contact's, as campaign-api publishes it."""
    zone = ZoneInfo(contact.timezone or "UTC")
    event = EmailEngagement(campaign_id=uuid4(), run_id=uuid4(), send_id=uuid4(), contact_id=contact.id, step_index=0,
                            kind=kind, machine=machine, occurred_at=local.replace(tzinfo=zone).astimezone(UTC))
    await handle(handlers.remember_engagement, event, wired)
    return event


async def suggestion(client, segment_id: str, **query) -> dict:
    answer = await client.get("/api/send-time-suggestion", params={"segment_id": segment_id, **query})
    assert answer.status == 200, await answer.text()
    return await answer.json()


async def history_with_known_hours(wired) -> tuple[str, list, dict, int]:
    """60 contacts, most preferring 14:00, a third 20:00 or 07:00; 75% of each one's
    opens and clicks within an hour of their preference, the rest anywhere in the week.
    Returns the segment, its contacts, their preferred hours and the count of human events."""
    rng = random.Random(11)
    segment_id, contacts = await segment_of(wired, "pref", 60)
    preferred, human = {}, 1  # the repeated open below counts once
    for contact in contacts:
        preferred[contact.id] = rng.choices([14, 20, 7], [6, 2, 2])[0]
        for _ in range(rng.randint(4, 9)):
            if rng.random() < 0.75:
                hour = preferred[contact.id] + rng.choice([0, 0, 0, -1, 1])
                local = MONDAY + timedelta(days=rng.randrange(5), hours=hour, minutes=rng.randrange(60))
            else:
                local = MONDAY + timedelta(minutes=rng.randrange(7 * 24 * 60))
            await engage(wired, contact, local, rng.choice([EngagementKind.OPEN, EngagementKind.CLICK]))
            human += 1
    # Machine opens at 03:00 are not engagement, and a redelivered event counts once.
    for contact in contacts[:40]:
        await engage(wired, contact, MONDAY + timedelta(hours=3), machine=True)
    repeated = await engage(wired, contacts[0], MONDAY + timedelta(hours=3))
    await handle(handlers.remember_engagement, repeated, wired)
    return segment_id, contacts, preferred, human


async def test_the_suggestion_recovers_the_segments_hour_and_each_contacts_own(setting):
    wired, client = setting
    segment_id, contacts, preferred, human = await history_with_known_hours(wired)

    answer = await suggestion(client, segment_id, timezone="Europe/Paris", default_time_of_day="09:00")
    assert answer["fallback"] is False and answer["reason"] is None
    assert answer["start_time_of_day"] == "14:00" and answer["send_in_recipient_timezone"] is True
    assert answer["best_weekday"] in ("monday", "tuesday", "wednesday", "thursday", "friday")
    assert answer["lift"] > 2 and answer["expected_share"] > answer["default_share"]
    assert answer["contacts"] == answer["contacts_with_history"] == 60
    assert answer["events"] == human, "machine opens and repeats are not engagement"

    evidence = await wired["history"].evidence((await wired["segments"].get(segment_id)).criteria)
    counts = await wired["history"].hours_of([c.id for c in contacts])
    own = Counter(contact_best_hour(counts[c.id], segment_profile(evidence)) == preferred[c.id] for c in contacts)
    assert own[True] >= 0.8 * len(contacts), own


async def test_contacts_without_a_timezone_are_read_in_the_campaigns(setting):
    wired, client = setting
    contacts = [await wired["audience"].add(ContactDraft(email=f"nozone{i}@example.com", attributes={"group": "nozone"}))
                for i in range(12)]
    segment = await wired["segments"].add(SegmentDraft(name="nozone", criteria={
        "operator": "AND", "conditions": [{"field": "attributes.group", "op": "eq", "value": "nozone"}]}))
    for contact in contacts:
        for day in range(4):  # 14:00 UTC, as their engagement is counted
            await engage(wired, contact, MONDAY + timedelta(days=day, hours=14, minutes=10))

    in_tokyo = await suggestion(client, str(segment.id), timezone="Asia/Tokyo")  # UTC+9 all year
    assert (in_tokyo["fallback"], in_tokyo["start_time_of_day"]) == (False, "23:00")
    assert (await suggestion(client, str(segment.id)))["start_time_of_day"] == "14:00"


async def test_with_too_little_history_the_answer_is_the_documented_fallback(setting):
    wired, client = setting
    segment_id, contacts = await segment_of(wired, "new", 8)
    await engage(wired, contacts[0], MONDAY + timedelta(hours=18))
    answer = await suggestion(client, segment_id, default_time_of_day="10:30")
    assert answer["fallback"] is True and answer["start_time_of_day"] == "10:30"
    assert "too little history" in answer["reason"] and answer["events"] == 1
    assert answer["best_weekday"] is None
    assert (await suggestion(client, segment_id))["start_time_of_day"] == "09:00", "the default default"


async def test_a_bad_query_names_its_field(setting):
    _, client = setting
    answer = await client.get("/api/send-time-suggestion", params={"segment_id": "nope", "timezone": "Mars/Olympus"})
    assert answer.status == 422
    paths = sorted(e["path"] for e in (await answer.json())["errors"])
    assert paths == ["$.segment_id", "$.timezone"]
    answer = await client.get("/api/send-time-suggestion", params={"segment_id": str(uuid4())})
    assert answer.status == 404


async def test_with_optimize_send_time_most_recipients_carry_their_own_hour(setting, publisher, kafka_bootstrap,
                                                                            topic_prefix):
    wired, _ = setting
    segment_id, contacts, preferred, _ = await history_with_known_hours(wired)
    run = activation(segment_id, optimize_send_time=True)
    await handle(handlers.evaluate_segment, run, {**wired, "publisher": publisher})
    records = await read_all(kafka_bootstrap, Topics(topic_prefix).physical(topics.SEGMENT_EVALUATED), 3)
    recipients = [r for record in records for r in decode(topics.SEGMENT_EVALUATED, record.key, record.value).recipients]
    assert len(recipients) == 60
    # The hour is added to each recipient's stored JSON: what the JSON held stays.
    assert all(r.marketing_opt_in is not None and r.change_seq is not None for r in recipients)
    own = Counter(r.send_hour == preferred[r.contact_id] for r in recipients)
    assert own[True] >= 0.8 * len(recipients), own
