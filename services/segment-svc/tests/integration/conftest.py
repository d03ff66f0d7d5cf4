"""segment-svc on the real PostgreSQL: its schema, and its HTTP routes over it."""

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from segment_svc.adapters.imports import ContactImports
from segment_svc.adapters.postgres import ContactRepository, SegmentRepository
from segment_svc.http import CONTACTS, ERRORS, IMPORT_BATCH, IMPORTS, SEGMENTS, routes
from servicekit.http import problem_middleware


@pytest.fixture
async def pool(service_pool):
    return await service_pool("segment", "segment_svc")


@pytest.fixture
async def client(pool):
    app = web.Application(middlewares=[problem_middleware(ERRORS)])
    app[CONTACTS], app[SEGMENTS], app[IMPORTS] = ContactRepository(pool), SegmentRepository(pool), ContactImports(pool)
    app[IMPORT_BATCH] = 3  # several batches even for a small file
    app.add_routes(routes)
    async with TestClient(TestServer(app)) as client:
        yield client
