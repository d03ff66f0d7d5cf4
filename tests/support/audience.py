"""A campaign to many contacts, made through the gateway as a user would: the tests of
backlogs and faults and the benchmarks share it."""

import json
from datetime import UTC, datetime


async def campaign_to(gateway, tag: str, size: int, subject: str = "Hi {{ first_name }}", html: str | None = None,
                      without_first_name: int = 0) -> str:
    """`size` opted-in contacts `c<i>@<tag>.example.com` imported as NDJSON (the first
    `without_first_name` of them with no first name), a segment of exactly them, and a
    draft campaign of one email to them starting now; returns the campaign's id."""
    for start in range(0, size, 50_000):  # an import of 50,000 at a time: a few MB each
        lines = (json.dumps({"email": f"c{i}@{tag}.example.com", "marketing_opt_in": True, "attributes": {"tag": tag},
                             **({} if i < without_first_name else {"first_name": f"C{i}"})})
                 for i in range(start, min(size, start + 50_000)))
        status, report = await gateway.send("/api/contacts/import", "\n".join(lines).encode(), "application/x-ndjson")
        assert status == 200 and report["rejected"] == 0, report
    segment = await gateway.ok("POST", "/api/segments", {"name": tag, "criteria": {
        "operator": "AND", "conditions": [{"field": "attributes.tag", "op": "eq", "value": tag}]}}, expect=201)
    content = {"subject": subject, "text": "Hello {{ first_name }}", **({"html": html} if html else {})}
    campaign = await gateway.ok("POST", "/api/campaigns", {
        "name": tag, "segment_id": segment["id"], "start_date": datetime.now(UTC).date().isoformat(),
        "start_time_of_day": "00:00", "content": content}, expect=201)
    return campaign["id"]
