"""Delivery end to end: what the SMTP server answers decides what happens to a send."""

import uuid
from datetime import UTC, datetime

import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def campaign_to(gateway, contacts: list[dict], subject: str = "Hello {{ first_name }}") -> dict:
    """An active campaign (content, no flow) to exactly these new contacts; waits for its end."""
    segment = await gateway.segment_of(contacts)
    campaign = await gateway.ok("POST", "/api/campaigns", {
        "name": segment["name"], "segment_id": segment["id"], "start_date": datetime.now(UTC).date().isoformat(),
        "start_time_of_day": "00:00", "content": {"subject": subject, "text": "Hi {{ first_name }}"}}, expect=201)
    await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})

    async def completed():
        body = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}")
        return body["status"] == "completed"

    await eventually(completed, "the campaign completes", timeout=60)
    return await gateway.ok("GET", f"/api/campaigns/{campaign['id']}/stats")


def mails_to(smtp, address: str) -> list:
    return [mail for mail in smtp.received if mail.envelope_to == [address]]


async def test_two_451_answers_then_250_deliver_exactly_once(system):
    _, gateway, smtp = system
    address = f"patient.{uuid.uuid4().hex[:8]}@example.com"
    smtp.handler.answer_next("451 4.3.0 greylisted, try later", "451 4.3.0 still greylisted")
    stats = await campaign_to(gateway, [{"email": address, "first_name": "Pat"}])
    assert smtp.attempts[address] == 3, "two deferrals, then the delivery"
    assert len(mails_to(smtp, address)) == 1
    assert (stats["sent"], stats["deferred"], stats["failed"]) == (1, 0, 0)


async def test_a_550_fails_once_and_is_never_retried(system):
    _, gateway, smtp = system
    address = f"nobody.{uuid.uuid4().hex[:8]}@example.com"
    smtp.handler.answer_next("550 5.1.1 no such user")
    stats = await campaign_to(gateway, [{"email": address, "first_name": "No"}])
    assert (stats["failed"], stats["sent"]) == (1, 0)
    assert smtp.attempts[address] == 1 and mails_to(smtp, address) == []


async def test_a_subject_with_cr_lf_cannot_add_a_header_and_unsubscribing_is_one_click(system):
    _, gateway, smtp = system
    address = f"eve.{uuid.uuid4().hex[:8]}@example.com"
    await campaign_to(gateway, [{"email": address, "first_name": "Eve\r\nBcc: victim@example.com"}],
                      subject="Hi {{ first_name }}")
    [mail] = mails_to(smtp, address)
    assert mail.message["Bcc"] is None and "victim@example.com" not in mail.envelope_to
    assert mail.subject == "Hi Eve Bcc: victim@example.com"
    links = mail.message["List-Unsubscribe"]
    assert "/u/" in links and "<mailto:unsubscribe@" in links
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert smtp.attempts["victim@example.com"] == 0
