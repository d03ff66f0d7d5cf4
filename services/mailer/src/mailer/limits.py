"""How fast the mailer may send: a global rate, and per recipient domain a rate and a
number of transactions at once, so one slow or strict domain cannot take all the
connections, and no domain sees more than it allows."""

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up. Pure: the clock is given."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, now

    def take(self, now: float) -> float:
        """Takes a token; returns how long to wait before using it (0: at once)."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class SendingLimits:
    """0 means no limit. Domains are compared lower-cased. The clock and the wait are
    given, so that a test can pace without waiting."""

    def __init__(self, global_rate: float, domain_rate: float, domain_concurrency: int,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock, self._sleep = clock, sleep
        burst = lambda rate: max(1.0, rate / 10)  # noqa: E731 - a tenth of a second's worth
        self._global = TokenBucket(global_rate, burst(global_rate), clock()) if global_rate else None
        self._domain_rate = domain_rate
        self._domains: dict[str, TokenBucket] = {}
        self._slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(domain_concurrency or 1_000_000)
        )

    @asynccontextmanager
    async def slot(self, domain: str) -> AsyncIterator[None]:
        domain = domain.lower()
        async with self._slots[domain]:
            await self._wait(self._global)
            if self._domain_rate:
                bucket = self._domains.get(domain)
                if bucket is None:
                    bucket = self._domains[domain] = TokenBucket(
                        self._domain_rate, max(1.0, self._domain_rate / 10), self._clock()
                    )
                await self._wait(bucket)
            yield

    async def _wait(self, bucket: TokenBucket | None) -> None:
        if bucket is not None and (delay := bucket.take(self._clock())) > 0:
            await self._sleep(delay)
