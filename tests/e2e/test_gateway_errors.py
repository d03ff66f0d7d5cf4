"""What a client that gets something wrong hears from the gateway: problem+json it can act on."""

import uuid

import aiohttp
import pytest

pytestmark = pytest.mark.e2e


async def raw(system, method: str, path: str, data=None, headers=None, key: str | None = "test-key"):
    running, _, _ = system
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as session, session.request(
        method, running.gateway + path, data=data, headers={**auth, **(headers or {})}
    ) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.json(content_type=None)


JSON = {"Content-Type": "application/json"}


async def test_malformed_json_is_a_400(system):
    status, kind, body = await raw(system, "POST", "/api/campaigns", b'{"name": ', JSON)
    assert status == 400 and kind.startswith("application/problem+json") and body["title"] == "Malformed JSON"


async def test_the_wrong_content_type_is_a_415(system):
    status, _, body = await raw(system, "POST", "/api/campaigns", b"name=x", {"Content-Type": "text/plain"})
    assert status == 415 and body["status"] == 415


async def test_unknown_and_invalid_fields_are_named_by_their_path(system):
    body = (b'{"name": "", "segment_id": "nope", "start_date": "2030-02-30", "start_time_of_day": "25:00",'
            b' "timezone": "Mars/Olympus", "surprise": 1}')
    status, _, problem = await raw(system, "POST", "/api/campaigns", body, JSON)
    assert status == 422
    assert {error["path"] for error in problem["errors"]} == {
        "$.name", "$.segment_id", "$.start_date", "$.start_time_of_day", "$.timezone", "$.surprise"}


async def test_an_oversized_body_is_a_413(system):
    status, _, body = await raw(system, "POST", "/api/campaigns", b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                                JSON)
    assert status == 413 and body["status"] == 413


async def test_an_unknown_id_is_a_404_and_a_bad_id_too(system):
    assert (await raw(system, "GET", f"/api/campaigns/{uuid.uuid4()}"))[0] == 404
    assert (await raw(system, "GET", "/api/campaigns/not-an-id"))[0] == 404


async def test_without_a_valid_key_the_api_is_closed_but_health_is_open(system):
    for key in (None, "wrong-key"):
        status, kind, body = await raw(system, "GET", "/api/campaigns", key=key)
        assert status == 401 and kind.startswith("application/problem+json") and body["status"] == 401
        assert (await raw(system, "GET", "/api/contacts", key=key))[0] == 401, "the gateway routes too"
    assert (await raw(system, "GET", "/healthz", key=None))[0] == 200


async def test_upstream_errors_come_through_unchanged_with_the_request_id(system):
    running, _, _ = system
    async with aiohttp.ClientSession() as session, session.post(
        running.gateway + "/api/segments", json={"name": "s", "criteria": {"operator": "XOR", "conditions": []}},
        headers={"Authorization": "Bearer test-key", "X-Request-Id": "req-42"},
    ) as response:
        problem = await response.json(content_type=None)
        assert response.status == 422 and response.headers["X-Request-Id"] == "req-42"
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert {"$.criteria.operator", "$.criteria.conditions"} <= {e["path"] for e in problem["errors"]}
