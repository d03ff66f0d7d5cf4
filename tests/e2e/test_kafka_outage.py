"""Kafka away for a while: the API keeps answering, and every event goes out once, in order,
when the broker is back (the transactional outbox)."""

import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import topics
from contracts.codec import decode
from servicekit.kafka import Topics
from tests.support.kafka import read_all
from tests.support.polling import eventually
from tests.support.servers import KAFKA_BOOTSTRAP, ROOT

pytestmark = pytest.mark.e2e


def broker(action: str) -> None:
    subprocess.run([str(ROOT / "deploy" / "kafka.sh"), action], check=True,
                   env={**os.environ, "INSTANCE": "test"}, capture_output=True)


async def test_campaigns_activated_while_kafka_is_down_publish_every_event_once(system, kafka_bootstrap):
    if kafka_bootstrap != KAFKA_BOOTSTRAP:
        pytest.skip("stops and starts the project's own test broker only")
    running, gateway, _ = system
    segment = await gateway.ok("POST", "/api/segments", {"name": "s", "criteria": {
        "operator": "AND", "conditions": [{"field": "attributes.tag", "op": "eq", "value": uuid.uuid4().hex}]}},
        expect=201)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    broker("stop")
    try:
        campaigns = []
        for n in range(3):
            campaign = await gateway.ok("POST", "/api/campaigns", {
                "name": f"outage {n}", "segment_id": segment["id"], "start_date": tomorrow,
                "start_time_of_day": "09:00", "content": {"subject": "s", "text": "t"}}, expect=201)
            path = f"/api/campaigns/{campaign['id']}/status"
            await gateway.ok("PUT", path, {"status": "active"})
            await gateway.ok("PUT", path, {"status": "paused"})
            campaigns.append(campaign["id"])
    finally:
        broker("start")

    names = Topics(running.topic_prefix)

    async def published(topic: str, per_campaign: int):
        records = await read_all(running.kafka_bootstrap, names.physical(topic), 1, timeout=30)
        found = {c: [decode(topic, r.key, r.value) for r in records if r.key == c.encode()] for c in campaigns}
        return all(len(events) >= per_campaign for events in found.values()) and found

    activated = await eventually(lambda: published(topics.CAMPAIGN_ACTIVATED, 1), "campaign.activated", 90)
    assert all(len(events) == 1 for events in activated.values()), "each published once"
    statuses = await eventually(lambda: published(topics.CAMPAIGN_STATUS, 2), "campaign.status", 60)
    for events in statuses.values():
        assert [e.status.value for e in events] == ["active", "paused"], "once each, in order"
