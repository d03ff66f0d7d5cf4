"""An event loop whose clock the test owns: time stands still while callbacks are ready,
and when the loop would wait (a sleep, aiolimiter's timer), the clock jumps to the next
timer at once instead. Pacing is then measured in loop time, and nobody waits."""

import asyncio
import selectors
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    def __init__(self, loop: "VirtualClockLoop") -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if not ready and timeout:
            self._loop.now += timeout
        elif not ready and timeout is None:
            raise RuntimeError("the loop would wait forever: nothing is scheduled")
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self.now


def run(main: Awaitable[T]) -> T:
    """`main` to its end on a loop of its own whose clock starts at 0."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()
