"""The one way to wait out the infrastructure: work that a database, broker or SMTP
server failed is tried again with capped backoff for as long as it takes, the component
degraded on /healthz meanwhile, and a stop (SIGTERM) ends the waiting at once.

Not stamina or tenacity: both sleep between tries, and a stop must not wait behind a
30-second sleep (services.sh gives a service 10 s before SIGKILL)."""

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from servicekit.health import HEALTH

log = structlog.get_logger()
T = TypeVar("T")

# Waits between tries, the last one repeated.
BACKOFF: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def wait_after(failures: int, waits: tuple[float, ...] = BACKOFF) -> float:
    """The wait after the `failures`-th failure in a row (1 for the first)."""
    return waits[min(max(failures, 1), len(waits)) - 1]


async def pause(stop: asyncio.Event | None, seconds: float) -> bool:
    """Waits `seconds`, or less if `stop` is set meanwhile; says whether it was."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
    return stop.is_set()


async def persistently(component: str, attempt: Callable[[], Awaitable[T]], *, stop: asyncio.Event | None = None,
                       waits: tuple[float, ...] = BACKOFF, retry_on: tuple[type[BaseException], ...] = (Exception,),
                       give_up: tuple[type[BaseException], ...] = ()) -> T:
    """`attempt()` until it returns. `give_up`'s errors, and those not in `retry_on`, are
    raised at once; so is the last error when a stop comes (the work is then not done,
    and must be found again after the restart: an uncommitted message, a pending row)."""
    for failures in itertools.count(1):
        try:
            result = await attempt()
        except give_up:
            raise
        except retry_on as error:
            HEALTH.degraded(component, repr(error))
            wait = wait_after(failures, waits)
            log.warning("retrying", component=component, tries=failures, wait=wait, error=repr(error))
            if (stop is not None and stop.is_set()) or await pause(stop, wait):
                raise
        else:
            if failures > 1:
                log.info("recovered", component=component, tries=failures)
            HEALTH.recovered(component)
            return result
    raise AssertionError("unreachable")
