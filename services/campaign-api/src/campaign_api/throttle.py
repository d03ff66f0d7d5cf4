"""Sign-in attempts throttled: a password cannot be guessed at the gateway's pace. Failed
attempts are counted per email and per client address over a window; past the limit, a
sign-in is refused (429, Retry-After) until the oldest failure leaves the window, even
with the right password. Kept in memory: each gateway instance counts its own."""

import time
from collections import deque
from collections.abc import Callable


class TooManyAttempts(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after:.0f} s")
        self.retry_after = retry_after


class SignInThrottle:
    def __init__(self, attempts: int = 10, window: float = 900.0, keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._attempts, self._window, self._keys, self._clock = attempts, window, keys, clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, *keys: str) -> None:
        """Raises TooManyAttempts while any key is over its limit."""
        now = self._clock()
        waits = [self._wait(key, now) for key in keys]
        if max(waits, default=0) > 0:
            raise TooManyAttempts(max(waits))

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            self._failures.setdefault(key, deque(maxlen=self._attempts)).append(now)
        while len(self._failures) > self._keys:  # a flood of addresses: the oldest keys go
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _wait(self, key: str, now: float) -> float:
        failures = self._failures.get(key)
        if failures is None:
            return 0.0
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return 0.0
        return self._window - (now - failures[0]) if len(failures) >= self._attempts else 0.0
