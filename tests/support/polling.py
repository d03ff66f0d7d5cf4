"""Waiting in tests: a poll with a deadline and a message that says what never happened."""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T] | T], what: str, timeout: float = 30.0, every: float = 0.1) -> T:
    """Calls `check` (plain or async) until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"within {timeout}s, never: {what} (last seen: {last!r})")


async def never(check: Callable[[], Awaitable[T] | T], what: str, during: float, every: float = 0.1) -> None:
    """Fails as soon as `check` returns something truthy within `during` seconds: for what
    must not happen (mail of a paused campaign), watched for a bounded time."""
    deadline = time.monotonic() + during
    while time.monotonic() < deadline:
        seen = check()
        if inspect.isawaitable(seen):
            seen = await seen
        if seen:
            raise AssertionError(f"within {during}s: {what} (seen: {seen!r})")
        await asyncio.sleep(every)
