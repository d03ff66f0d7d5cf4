"""How fast the mailer may send: a global rate, and per recipient domain a rate and a
number of transactions at once, so one slow or strict domain cannot take all the
connections, and no domain sees more than it allows.

The rates are aiolimiter's leaky buckets: `rate` a second with a burst of a tenth of a
second's worth (at least one), i.e. `AsyncLimiter(burst, burst / rate)`. It keeps time
with the event loop's clock (`loop.time()`), so a test paces on a loop whose clock it
moves on (tests/unit/clock.py) rather than waiting."""

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter


def rate_limiter(rate: float) -> AsyncLimiter | None:
    """`rate` acquisitions a second, a tenth of a second's worth at once; None for 0 (no limit)."""
    if not rate:
        return None
    burst = max(1.0, rate / 10)
    return AsyncLimiter(burst, burst / rate)


class SendingLimits:
    """0 means no limit. Domains are compared lower-cased."""

    def __init__(self, global_rate: float, domain_rate: float, domain_concurrency: int) -> None:
        self._global = rate_limiter(global_rate)
        self._domain_rate = domain_rate
        self._domains: dict[str, AsyncLimiter] = {}
        self._slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(domain_concurrency or 1_000_000)
        )

    @asynccontextmanager
    async def slot(self, domain: str) -> AsyncIterator[None]:
        domain = domain.lower()
        async with self._slots[domain]:
            if self._global is not None:
                await self._global.acquire()
            if self._domain_rate:
                limiter = self._domains.get(domain)
                if limiter is None:
                    limiter = self._domains[domain] = rate_limiter(self._domain_rate)
                await limiter.acquire()
            yield
