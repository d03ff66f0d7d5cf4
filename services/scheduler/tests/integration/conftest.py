import pytest

from .adapters import Scheduler


@pytest.fixture
async def scheduler(service_pool) -> Scheduler:
    return Scheduler(await service_pool("scheduler", "scheduler"))
