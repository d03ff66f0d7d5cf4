"""A contact import through the gateway, and what it means for delivery."""

import uuid
from datetime import UTC, datetime

import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def test_imported_contacts_are_mailed_by_their_imported_consent(system):
    _, gateway, smtp = system
    tag = f"t{uuid.uuid4().hex[:10]}"  # never all digits: a CSV cell of plain digits is a number
    yes, no = f"yes.{tag}@example.com", f"no.{tag}@example.com"
    body = (
        f"email,first_name,marketing_opt_in,attributes.tag\n"
        f"{yes},Yan,true,{tag}\n"
        f"{no},Noa,false,{tag}\n"
        f"not-an-address,Bad,true,{tag}\n"
    ).encode()

    async def chunks():  # streamed through the gateway as it is written
        for start in range(0, len(body), 7):
            yield body[start:start + 7]

    status, report = await gateway.send("/api/contacts/import", chunks(), "text/csv")
    assert status == 200, report
    assert (report["inserted"], report["updated"], report["rejected"]) == (2, 0, 1)
    assert report["rejections"][0]["line"] == 4

    segment = await gateway.ok("POST", "/api/segments", {"name": tag, "criteria": {
        "operator": "AND", "conditions": [{"field": "attributes.tag", "op": "eq", "value": tag}]}}, expect=201)
    campaign = await gateway.ok("POST", "/api/campaigns", {
        "name": tag, "segment_id": segment["id"], "start_date": datetime.now(UTC).date().isoformat(),
        "start_time_of_day": "00:00", "content": {"subject": "Hi {{ first_name }}", "text": "t"}}, expect=201)
    await gateway.ok("PUT", f"/api/campaigns/{campaign['id']}/status", {"status": "active"})

    async def completed():
        return (await gateway.ok("GET", f"/api/campaigns/{campaign['id']}"))["status"] == "completed"

    await eventually(completed, "the campaign completes", timeout=60)
    stats = await gateway.ok("GET", f"/api/campaigns/{campaign['id']}/stats")
    assert (stats["sent"], stats["skipped_no_consent"]) == (1, 1)
    assert [mail.subject for mail in smtp.received if mail.envelope_to == [yes]] == ["Hi Yan"]
    assert not [mail for mail in smtp.received if mail.envelope_to == [no]]
