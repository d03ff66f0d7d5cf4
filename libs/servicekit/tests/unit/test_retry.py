"""Work the infrastructure fails is tried until done, degraded meanwhile, and a stop ends the waiting."""

import asyncio

import pytest

from servicekit.health import HEALTH
from servicekit.retry import persistently, wait_after

FAST = (0.001, 0.002)


async def test_work_is_tried_until_it_succeeds_and_the_component_is_degraded_meanwhile():
    tries, seen = [], []

    async def attempt():
        tries.append(1)
        seen.append(HEALTH.report()["degraded"].get("db"))
        if len(tries) < 4:
            raise ConnectionError("refused")
        return "done"

    assert await persistently("db", attempt, waits=FAST) == "done"
    assert len(tries) == 4 and seen[0] is None and seen[1] == "ConnectionError('refused')"
    assert "db" not in HEALTH.report()["degraded"]


async def test_a_verdict_is_raised_at_once_and_other_errors_than_those_retried_too():
    async def rejected():
        raise ValueError("never valid")

    with pytest.raises(ValueError):
        await persistently("x", rejected, waits=FAST, give_up=(ValueError,))
    with pytest.raises(ValueError):
        await persistently("x", rejected, waits=FAST, retry_on=(ConnectionError,))


async def test_a_stop_ends_the_waiting_at_once_with_the_last_error():
    stop = asyncio.Event()

    async def failing():
        asyncio.get_running_loop().call_soon(stop.set)
        raise ConnectionError("away")

    started = asyncio.get_running_loop().time()
    with pytest.raises(ConnectionError):
        await persistently("y", failing, stop=stop, waits=(30.0,))
    assert asyncio.get_running_loop().time() - started < 5, "did not wait out the 30 s"
    HEALTH.recovered("y")


def test_the_waits_grow_and_the_last_repeats():
    assert [wait_after(n, (1.0, 2.0, 5.0)) for n in (1, 2, 3, 4, 9)] == [1.0, 2.0, 5.0, 5.0, 5.0]
