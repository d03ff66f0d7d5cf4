"""Sizes through the five services: contacts with 1 KB of attributes each are evaluated in
batches cut by bytes (2,000 of them would be over Kafka's 1 MB) and every one is mailed
once; what could not travel in one message is refused at the API, naming the limit."""

import json
import time
from datetime import UTC, datetime

import pytest

from contracts.topics import ALL_TOPICS, DLQ_SUFFIX
from tests.support.kafka import message_count
from tests.support.polling import eventually
from tests.support.scale import sized
from tests.support.stack import running_system

pytestmark = pytest.mark.e2e

CONTACTS = sized(3_000, 20_000)  # 3,000 x 1 KB: a batch of 2,000 is 2.6 MB, over the broker's 1 MB
ONE_KB = "x" * 1_000


@pytest.fixture(scope="module")
async def system(postgres_url, kafka_bootstrap, tmp_path_factory):
    async with running_system(postgres_url, kafka_bootstrap, tmp_path_factory.mktemp("logs")) as running:
        yield running


async def dead_letters(running) -> dict[str, int]:
    """Messages on each of this system's dead-letter topics, those that hold any."""
    counts = {spec.name: await message_count(running.kafka_bootstrap, running.topic_prefix + spec.name)
              for spec in ALL_TOPICS if spec.name.endswith(DLQ_SUFFIX)}
    return {topic: count for topic, count in counts.items() if count}


async def test_contacts_with_a_kilobyte_of_attributes_are_all_mailed_once_and_the_campaign_completes(system):
    running, gateway, smtp = system
    tag = f"t{time.monotonic_ns()}"
    lines = (json.dumps({"email": f"c{i}@{tag}.example.com", "first_name": f"C{i}", "marketing_opt_in": True,
                         "attributes": {"tag": tag, "bio": ONE_KB, "n": i}}) for i in range(CONTACTS))
    status, report = await gateway.send("/api/contacts/import", "\n".join(lines).encode(), "application/x-ndjson")
    assert status == 200 and report["inserted"] == CONTACTS, {k: report[k] for k in ("inserted", "rejected")}
    segment = await gateway.ok("POST", "/api/segments", {"name": tag, "criteria": {
        "operator": "AND", "conditions": [{"field": "attributes.tag", "op": "eq", "value": tag}]}}, expect=201)
    campaign = await gateway.ok("POST", "/api/campaigns", {
        "name": tag, "segment_id": segment["id"], "start_date": datetime.now(UTC).date().isoformat(),
        "start_time_of_day": "00:00",
        "content": {"subject": "Hi {{ first_name }}", "text": "{{ attributes.bio[:10] }} #{{ attributes.n }}"}},
        expect=201)
    await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})

    def received() -> list:
        return [mail for mail in smtp.received if mail.envelope_to[0].endswith(f"@{tag}.example.com")]

    async def completed() -> bool:
        return (await gateway.ok("GET", f"/api/campaigns/{campaign['id']}"))["status"] == "completed"

    await eventually(lambda: len({mail.envelope_to[0] for mail in received()}) == CONTACTS,
                     f"an email to each of the {CONTACTS:,} contacts", timeout=60 + CONTACTS / 50, every=0.5)
    await eventually(completed, "the campaign completes", timeout=60)
    mails = received()
    assert len(mails) == CONTACTS, "each contact got exactly one email"
    assert {mail.text().strip() for mail in mails} == {f"{ONE_KB[:10]} #{i}" for i in range(CONTACTS)}
    stats = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}/stats")
    assert (stats["targeted"], stats["scheduled"], stats["sent"]) == (CONTACTS, CONTACTS, CONTACTS), stats
    assert await dead_letters(running) == {}, "no dead letters"


async def test_attributes_and_content_too_large_to_travel_are_refused_naming_the_limit(system):
    _, gateway, _ = system
    tag = f"t{time.monotonic_ns()}"
    too_large = {"tag": tag, "blob": "x" * 70_000}

    status, problem = await gateway.call("POST", "/api/contacts", {"email": f"big@{tag}.example.com",
                                                                   "attributes": too_large})
    assert status == 422 and problem["errors"][0]["path"] == "$.attributes", problem
    assert "65,536 bytes" in problem["errors"][0]["message"], problem

    contact = await gateway.ok("POST", "/api/contacts", {"email": f"grows@{tag}.example.com",
                                                        "attributes": {"a": "x" * 40_000}}, expect=201)
    status, problem = await gateway.call("PATCH", f"/api/contacts/{contact['id']}", {"attributes": {"b": "y" * 40_000}})
    assert status == 422 and problem["errors"][0]["path"] == "$.attributes", problem
    assert "65,536 bytes" in problem["errors"][0]["message"], problem

    status, report = await gateway.send("/api/contacts/import", json.dumps(
        {"email": f"imported@{tag}.example.com", "attributes": too_large}).encode(), "application/x-ndjson")
    assert status == 200 and report["rejected"] == 1 and "65,536 bytes" in report["rejections"][0]["reason"], report

    huge = {"subject": "Hi", "html": "<p>" + '"' * 300_000 + "</p>"}  # 300,000 characters, 600,000 bytes as JSON
    status, problem = await gateway.call("POST", "/api/flows", {
        "name": tag, "steps": [{"type": "SEND_EMAIL", "config": huge}]})
    assert status == 422 and "524,288" in problem["detail"], problem
    each = {"subject": "Hi", "text": "x" * 310_000}  # 930,000 bytes together, in a request under 1 MiB
    status, problem = await gateway.call("POST", "/api/flows", {
        "name": tag, "steps": [{"type": "SEND_EMAIL", "config": each}] * 3})
    assert status == 422 and "900,000" in problem["detail"], problem
    segment = await gateway.ok("POST", "/api/segments", {"name": tag, "criteria": {
        "operator": "AND", "conditions": [{"field": "attributes.tag", "op": "eq", "value": tag}]}}, expect=201)
    status, problem = await gateway.call("POST", "/api/campaigns", {
        "name": tag, "segment_id": segment["id"], "start_date": datetime.now(UTC).date().isoformat(),
        "start_time_of_day": "00:00", "content": huge})
    assert status == 422 and "524,288" in problem["detail"], problem
