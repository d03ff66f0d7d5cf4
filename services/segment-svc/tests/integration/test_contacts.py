"""Contacts over HTTP on the real PostgreSQL."""

import uuid

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


async def test_contacts_are_found_by_the_start_of_their_email_or_name_in_the_lists_pages(client):
    tag = "s" + uuid.uuid4().hex[:10]
    people = [(f"{tag}.ann@example.com", f"{tag}Ann", f"{tag}Archer"), (f"{tag}.bob@example.com", "Bob", f"{tag}Baker"),
              (f"{tag}_x%y@example.com", None, None), (f"{tag}.cy@example.com", f"{tag}Cy", None),
              (f"{tag}.dee@example.com", None, f"{tag}Dee")]
    ids = {}
    for email, first, last in people:
        answer = await client.post("/api/contacts", json={"email": email, "first_name": first, "last_name": last})
        assert answer.status == 201, await answer.text()
        ids[email] = (await answer.json())["id"]

    async def found(q: str, **params) -> list[str]:
        answer = await client.get("/api/contacts", params={"q": q, **params})
        assert answer.status == 200, await answer.text()
        page = await answer.json()
        return [item["email"] for item in page["items"]]

    ann, bob, odd, cy, dee = (p[0] for p in people)
    assert await found(f"{tag}.ANN") == [ann], "by email prefix, any case"
    assert await found(f"{tag.upper()}ANN") == [ann], "by first name"
    assert await found(f"{tag}baker") == [bob], "by last name"
    assert await found(f"{tag}ann {tag}arc") == [ann], "by first and last name"
    assert await found(f"{tag}dee") == [dee] and await found(f"{tag}cy") == [cy], "one name is enough"
    assert await found(f"{tag}.nobody") == []
    assert await found(f"{tag}_") == [odd], "_ is a character, not any character"
    assert await found(f"{tag}%") == [], "% is a character, not anything"
    assert await found(f"{tag}_x%y") == [odd] and await found(f"{tag}\\") == []

    listed, cursor, pages = [], None, 0
    while pages < 10:
        answer = await client.get("/api/contacts", params={"q": tag, "limit": 2, **({"cursor": cursor} if cursor else {})})
        page = await answer.json()
        listed += [item["id"] for item in page["items"]]
        pages += 1
        if not (cursor := page["next_cursor"]):
            break
    assert listed == sorted(ids.values()) and pages == 3, "in id order, each once, by the list's cursor"

    for q in ("", "x" * 321):
        answer = await client.get("/api/contacts", params={"q": q})
        assert answer.status == 400 and (await answer.json())["errors"][0]["path"] == "$.q"

