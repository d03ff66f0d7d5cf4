"""The campaign lifecycle over HTTP, with the events it publishes on the real topics."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import topics
from contracts.codec import decode
from servicekit.kafka import Topics
from tests.support.kafka import read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def draft(gateway, **overrides) -> dict:
    """A draft campaign starting tomorrow (nothing completes it by itself during the test)."""
    segment = await gateway.ok("POST", "/api/segments", {"name": "s", "criteria": {
        "operator": "AND", "conditions": [{"field": "attributes.tag", "op": "eq", "value": uuid.uuid4().hex}]}},
        expect=201)
    body = {"name": "lifecycle", "segment_id": segment["id"], "start_time_of_day": "09:00",
            "start_date": (datetime.now(UTC) + timedelta(days=1)).date().isoformat(),
            "content": {"subject": "Hi", "text": "Hello"}, **overrides}
    return await gateway.ok("POST", "/api/campaigns", body, expect=201)


async def events_of(system_, topic: str, campaign_id: str, count: int) -> list:
    running, _, _ = system_
    records = await read_all(running.kafka_bootstrap, Topics(running.topic_prefix).physical(topic), count,
                             timeout=20)
    return [decode(topic, r.key, r.value) for r in records if r.key == campaign_id.encode()]


async def test_twenty_concurrent_activations_make_one_activation(system):
    _, gateway, _ = system
    campaign = await draft(gateway)
    path = f"/api/campaigns/{campaign['id']}/status"
    answers = await asyncio.gather(*(gateway.call("PUT", path, {"status": "active"}) for _ in range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [409] * 19
    refused = next(body for status, body in answers if status == 409)
    assert (refused["current_status"], refused["allowed"]) == ("active", ["paused"])

    async def activations():
        found = await events_of(system, topics.CAMPAIGN_ACTIVATED, campaign["id"], 1)
        return found

    [activated] = await eventually(activations, "campaign.activated is published")
    assert str(activated.campaign_id) == campaign["id"]
    assert activated.status_seq == 2, "the draft was the campaign's first status, the activation its second"


async def test_every_allowed_and_forbidden_transition(system):
    _, gateway, _ = system
    campaign = await draft(gateway)
    path = f"/api/campaigns/{campaign['id']}/status"

    async def move(target: str, expect: int) -> dict:
        status, body = await gateway.call("PUT", path, {"status": target})
        assert status == expect, (target, status, body)
        return body

    for target in ("paused", "completed", "draft"):
        problem = await move(target, 409)
        assert problem["current_status"] == "draft" and problem["allowed"] == ["active"]
        assert problem["status"] == 409 and problem["title"]
    await move("active", 200)
    for target in ("completed", "draft", "active"):
        assert (await move(target, 409))["current_status"] == "active"
    assert (await gateway.call("PATCH", f"/api/campaigns/{campaign['id']}", {"name": "x"}))[0] == 409
    assert (await gateway.call("DELETE", f"/api/campaigns/{campaign['id']}"))[0] == 409
    await move("paused", 200)
    await move("active", 200)
    await move("paused", 200)
    await move("completed", 200)
    for target in ("active", "paused", "completed", "draft"):
        assert (await move(target, 409))["allowed"] == []

    body = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}")
    expected = ["draft", "active", "paused", "active", "paused", "completed"]
    assert [h["status"] for h in body["status_history"]] == expected
    assert body["completed_at"] is not None

    async def all_published():
        found = await events_of(system, topics.CAMPAIGN_STATUS, campaign["id"], 5)
        return len(found) == 5 and found

    published = await eventually(all_published, "five campaign.status events")
    assert [(e.previous.value, e.status.value) for e in published] == list(zip(expected, expected[1:], strict=False))
    assert [e.status_seq for e in published] == [2, 3, 4, 5, 6], "each change is newer than the one before"


async def test_a_campaign_without_a_known_segment_is_not_created_and_a_missing_flow_is_a_warning(system):
    _, gateway, _ = system
    status, problem = await gateway.call("POST", "/api/campaigns", {
        "name": "x", "segment_id": str(uuid.uuid4()), "start_date": "2030-01-01", "start_time_of_day": "09:00",
        "content": {"subject": "s", "text": "t"}})
    assert status == 422 and problem["errors"][0]["path"] == "$.segment_id"
    missing_flow = str(uuid.uuid4())
    campaign = await draft(gateway, flow_id=missing_flow)
    assert campaign["flow_id"] is None and missing_flow in campaign["warnings"][0]


async def test_a_campaign_with_neither_flow_nor_content_cannot_be_activated(system):
    _, gateway, _ = system
    campaign = await draft(gateway, content=None)
    status, problem = await gateway.call("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})
    assert status == 422 and "neither a flow nor content" in problem["detail"]
    assert (await gateway.ok("GET", f"/api/campaigns/{campaign['id']}"))["status"] == "draft"


async def test_the_schedule_preview_shows_each_email_in_utc_and_local_time(system):
    _, gateway, _ = system
    flow = await gateway.ok("POST", "/api/flows", {"name": "f", "steps": [
        {"type": "SEND_EMAIL", "config": {"subject": "one", "text": "1"}},
        {"type": "WAIT", "config": {"days": 2}},
        {"type": "SEND_EMAIL", "config": {"subject": "two", "text": "2"}}]}, expect=201)
    campaign = await draft(gateway, flow_id=flow["id"], content=None, start_date="2031-03-28",
                           start_time_of_day="09:00", timezone="Europe/Paris")
    preview = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}/schedule-preview")
    assert [(s["step_index"], s["local"], s["utc"]) for s in preview["sends"]] == [
        (0, "2031-03-28T09:00:00+01:00", "2031-03-28T08:00:00Z"),
        (2, "2031-03-30T09:00:00+02:00", "2031-03-30T07:00:00Z"),  # across the spring change
    ]


async def test_campaigns_are_listed_by_status_a_page_at_a_time(system):
    _, gateway, _ = system
    drafts = [await draft(gateway) for _ in range(3)]
    active = await draft(gateway)
    await gateway.ok("PUT", f"/api/campaigns/{active['id']}/status", {"status": "active"})
    seen, cursor = [], None
    while True:
        page = await gateway.ok("GET", "/api/campaigns?status=draft&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["items"]) <= 2 and all(item["status"] == "draft" for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert {d["id"] for d in drafts} <= set(seen) and active["id"] not in seen
    assert len(seen) == len(set(seen)), "no campaign on two pages"
    status, problem = await gateway.call("GET", "/api/campaigns?status=bogus")
    assert status == 400 and problem["errors"][0]["path"] == "$.status"
