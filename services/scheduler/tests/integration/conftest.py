import pytest

from services.scheduler.tests.integration.adapters import Scheduler


@pytest.fixture
async def scheduler(service_pool) -> Scheduler:
    return Scheduler(await service_pool("scheduler", "scheduler"))
