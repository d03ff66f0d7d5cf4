"""Contacts over HTTP on the real PostgreSQL."""

import pytest

pytestmark = pytest.mark.integration


async def test_contacts_are_listed_in_pages_in_id_order_each_once(client):
    created = []
    for i in range(5):
        answer = await client.post("/api/contacts", json={"email": f"p{i}@example.com"})
        assert answer.status == 201
        created.append((await answer.json())["id"])

    listed, cursor, pages = [], None, 0
    while pages < 10:  # a cursor that went nowhere would page for ever
        answer = await client.get("/api/contacts", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        page = await answer.json()
        listed += [item["id"] for item in page["items"]]
        pages += 1
        if not (cursor := page["next_cursor"]):
            break

    assert listed == sorted(created) and pages == 3  # ids are time-ordered: creation order, to the millisecond
