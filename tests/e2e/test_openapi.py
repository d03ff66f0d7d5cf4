"""The gateway's OpenAPI document and its human-readable page."""

import re

import aiohttp
import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.e2e

GATEWAY_PATHS = {
    "/api/campaigns", "/api/campaigns/{id}", "/api/campaigns/{id}/status", "/api/campaigns/{id}/stats",
    "/api/campaigns/{id}/schedule-preview", "/api/contacts", "/api/contacts/{id}", "/api/contacts/import", "/api/segments",
    "/api/segments/{id}", "/api/segments/{id}/preview", "/api/flows", "/api/flows/{id}",
    "/api/send-time-suggestion", "/api/session", "/api/status", "/api/campaigns/{id}/recipients",
    "/api/campaigns/{id}/activity", "/api/flows/{id}/steps/{index}/render", "/api/flows/{id}/steps/{index}/test-send",
    "/api/contacts/{id}/engagement",
}


async def test_the_gateway_serves_one_valid_openapi_31_document_of_every_route(system):
    running, _, _ = system
    async with aiohttp.ClientSession() as session, session.get(running.gateway + "/api/openapi.json") as answer:
        assert answer.status == 200, "public: no API key needed"
        document = await answer.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == GATEWAY_PATHS
    create = document["paths"]["/api/campaigns"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CampaignDraft"}
    assert "application/problem+json" in create["responses"]["422"]["content"]


async def test_the_docs_page_works_offline(system):
    running, _, _ = system
    async with aiohttp.ClientSession() as session:
        async with session.get(running.gateway + "/api/docs/") as answer:
            assert answer.status == 200
            page = await answer.text()
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
        for asset in assets:
            url = asset if asset.startswith("/") else f"{running.gateway}/api/docs/{asset}"
            async with session.get(url if url.startswith("http") else running.gateway + url) as answer:
                assert answer.status == 200, asset


async def test_schemathesis_finds_no_server_error_and_no_answer_that_breaks_the_schema(system):
    """Property-based cases generated from /api/openapi.json against the running system."""
    import asyncio
    import sys

    running, _, _ = system
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "run", running.gateway + "/api/openapi.json",
        "--header", "Authorization: Bearer test-key",
        "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance",
        "--max-examples", "10", "--seed", "1", "--workers", "1",
        # The stateful phase needs links the document does not declare; schemathesis 4
        # sometimes fails in it with a RecursionError of its own (on the recursive criteria).
        "--phases", "examples,coverage,fuzzing",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode(errors="replace")
    cases = re.search(r"(\d+) generated", output)
    print(f"\nschemathesis: {cases.group(0) if cases else 'no count'}")
    assert process.returncode == 0, output[-4000:]
