"""The contacts' list and its search (`GET /api/contacts?q=`): which read the handler
chooses, on the fakes, and the query's validation over HTTP (the routes on the fakes)."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from segment_svc import handlers
from segment_svc.bootstrap import SERVICE
from segment_svc.contacts import ContactDraft
from servicekit.wiring import routes_app

from .fakes import dependencies

PEOPLE = [("ann.archer@example.com", "Ann", "Archer"), ("bob@example.com", "Bob", "Annan"),
          ("cy@example.com", "Cy", None), ("dee@example.com", None, "Dee")]


@pytest.fixture
async def wired():
    wired = dependencies()
    for email, first, last in PEOPLE:
        await wired["audience"].add(ContactDraft(email=email, first_name=first, last_name=last))
    return wired


async def emails(wired, q, after=None, limit=50) -> list[str]:
    """The emails found, which come in id order (ids made in one millisecond are in random order)."""
    found = await handlers.list_contacts(q, after, limit, wired["contacts"])
    assert found == sorted(found, key=lambda c: c.id)
    return sorted(c.email for c in found)


async def test_without_q_every_contact_is_listed_in_id_order(wired):
    assert await emails(wired, None) == sorted(p[0] for p in PEOPLE)


async def test_q_finds_by_the_start_of_the_email_a_name_or_the_full_name_whatever_the_case(wired):
    assert await emails(wired, "ANN") == ["ann.archer@example.com", "bob@example.com"]  # email, last name
    assert await emails(wired, "ann a") == ["ann.archer@example.com"]  # "first last"
    assert await emails(wired, "dee") == ["dee@example.com"]
    assert await emails(wired, "archer") == ["ann.archer@example.com"]
    assert await emails(wired, "nn") == [], "a prefix, not a substring"


async def test_a_search_pages_by_the_lists_cursor(wired):
    first = await handlers.list_contacts("ann", None, 1, wired["contacts"])
    rest = await handlers.list_contacts("ann", (first[-1].created_at, first[-1].id), 1, wired["contacts"])
    assert len(first) == len(rest) == 1 and first[0].id < rest[0].id
    assert sorted(c.email for c in first + rest) == ["ann.archer@example.com", "bob@example.com"]


@pytest.fixture
async def client(wired):
    async with TestClient(TestServer(routes_app(SERVICE, wired["settings"], wired))) as client:
        yield client


async def test_the_route_searches_with_q_and_lists_without(client):
    found = await (await client.get("/api/contacts", params={"q": "Bob"})).json()
    assert [c["email"] for c in found["items"]] == ["bob@example.com"] and found["next_cursor"] is None
    everyone = await (await client.get("/api/contacts", params={"limit": 3})).json()
    assert len(everyone["items"]) == 3 and everyone["next_cursor"]


@pytest.mark.parametrize("q", ["", "x" * 321, "a\x00b"], ids=["empty", "too-long", "nul"])
async def test_a_bad_q_is_a_400_naming_it(client, q):
    answer = await client.get("/api/contacts", params={"q": q})
    assert (answer.status, answer.content_type) == (400, "application/problem+json")
    assert [e["path"] for e in (await answer.json())["errors"]] == ["$.q"]


async def test_a_q_of_320_characters_is_searched(client):
    answer = await client.get("/api/contacts", params={"q": "x" * 320})
    assert answer.status == 200 and (await answer.json())["items"] == []
