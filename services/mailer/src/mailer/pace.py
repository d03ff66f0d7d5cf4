"""How fast this mailer sends: the sends recorded `sent` over the last minute, counted in
memory a second at a time where outcomes are recorded (no SQL), for /healthz's
`emails_per_second` (campaign-api's GET /api/status shows it)."""

import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60


class SentPace:
    """A moving count: per whole second of `clock`, how many were sent; seconds older than
    the window are dropped. The rate is the count over the window, or over the time since
    the mailer started while that is shorter, so a mailer just started shows its true pace."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window: int = WINDOW_SECONDS) -> None:
        self._clock, self._window = clock, window
        self._started = clock()
        self._seconds: deque[tuple[int, int]] = deque()  # (second, sent in it), oldest first

    def sent(self, count: int) -> None:
        if count <= 0:
            return
        second = int(self._clock())
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1] = (second, self._seconds[-1][1] + count)
        else:
            self._seconds.append((second, count))
        self._forget(second)

    def per_second(self) -> float:
        now = self._clock()
        self._forget(int(now))
        span = min(float(self._window), max(now - self._started, 1.0))
        return round(sum(count for _, count in self._seconds) / span, 2)

    def _forget(self, second: int) -> None:
        while self._seconds and self._seconds[0][0] <= second - self._window:
            self._seconds.popleft()
