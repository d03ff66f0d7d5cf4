"""One campaign end to end: HTTP -> five services on real Kafka and PostgreSQL -> SMTP."""

import time
from datetime import UTC, datetime

import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 3


async def test_campaign_emails_opted_in_contacts_and_completes(system):
    running, gateway, smtp = system
    contacts = [
        {"email": "ada@example.com", "first_name": "Ada", "marketing_opt_in": True, "attributes": {"plan": "pro"}},
        {"email": "grace@example.com", "first_name": "Grace", "marketing_opt_in": True, "attributes": {"plan": "pro"}},
        {"email": "opted.out@example.com", "first_name": "Olly", "marketing_opt_in": False, "attributes": {"plan": "pro"}},
        {"email": "free@example.com", "first_name": "Fred", "marketing_opt_in": True, "attributes": {"plan": "free"}},
    ]
    for contact in contacts:
        await gateway.ok("POST", "/api/contacts", contact, expect=201)
    segment = await gateway.ok(
        "POST", "/api/segments",
        {"name": "pro plan", "criteria": {"operator": "AND", "conditions": [
            {"field": "attributes.plan", "op": "eq", "value": "pro"}]}},
        expect=201,
    )
    flow = await gateway.ok(
        "POST", "/api/flows",
        {"name": "welcome", "steps": [
            {"type": "SEND_EMAIL", "config": {"subject": "Hello {{ first_name }}", "text": "Hi {{ first_name }}!"}},
            {"type": "WAIT", "config": {"seconds": WAIT_SECONDS}},
            {"type": "SEND_EMAIL", "config": {"subject": "Again, {{ first_name }}", "text": "Still here, {{ first_name }}."}},
        ]},
        expect=201,
    )
    today = datetime.now(UTC).date().isoformat()
    campaign = await gateway.ok(
        "POST", "/api/campaigns",
        {"name": "welcome pros", "segment_id": segment["id"], "flow_id": flow["id"],
         "start_date": today, "start_time_of_day": "00:00"},
        expect=201,
    )
    assert campaign["status"] == "draft" and campaign["warnings"] == []

    activation_sent = time.monotonic()
    activated = await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})
    assert activated["status"] == "active"
    # Editing the flow now changes nothing for the running campaign: it sends its snapshot.
    await gateway.ok("PUT", f"/api/flows/{flow['id']}", {"name": "welcome v2", "steps": [
        {"type": "SEND_EMAIL", "config": {"subject": "Changed", "text": "changed"}}]})

    ours = {contact["email"] for contact in contacts}

    def received():
        return [mail for mail in smtp.received if mail.envelope_to[0] in ours]

    async def four_emails():
        return len(received()) >= 4

    await eventually(four_emails, "four emails arrive at the SMTP server", timeout=60)

    async def completed():
        body = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}")
        return body["status"] == "completed" and body

    final = await eventually(completed, "the campaign is completed", timeout=30)
    assert [h["status"] for h in final["status_history"]] == ["draft", "active", "completed"]

    by_recipient: dict[str, list] = {}
    for mail in received():
        by_recipient.setdefault(mail.envelope_to[0], []).append(mail)
    assert sorted(by_recipient) == ["ada@example.com", "grace@example.com"], "only opted-in pros get email"
    for address, name in (("ada@example.com", "Ada"), ("grace@example.com", "Grace")):
        first, second = by_recipient[address]
        assert first.subject == f"Hello {name}" and f"Hi {name}!" in first.text()
        assert second.subject == f"Again, {name}" and f"Still here, {name}." in second.text()
        # Step 2 is due WAIT after step 1's due time, which is the activation instant.
        assert second.at >= activation_sent + WAIT_SECONDS, "the second email waits for the WAIT step"
        assert first.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(received()) == 4

    stats = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}/stats")
    assert (stats["targeted"], stats["scheduled"], stats["sent"], stats["skipped_no_consent"]) == (3, 6, 4, 2)
