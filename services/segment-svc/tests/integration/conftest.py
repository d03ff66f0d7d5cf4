"""segment-svc on the real PostgreSQL: its schema, and its HTTP routes over it."""

import pytest
from aiohttp.test_utils import TestClient, TestServer

from .service import app_of, dependencies


@pytest.fixture
async def pool(service_pool):
    return await service_pool("segment", "segment_svc")


@pytest.fixture
async def client(pool):
    wired = await dependencies(pool, import_batch_size=3)  # several batches even for a small file
    async with TestClient(TestServer(app_of(wired))) as client:
        yield client
