"""Runs a service: its HTTP site and background tasks, until SIGTERM or SIGINT."""

import asyncio
import signal
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

log = structlog.get_logger()


async def serve(
    app: web.Application,
    host: str,
    port: int,
    tasks: Callable[[asyncio.Event], list[Awaitable[None]]],
) -> None:
    """Starts `app` and the tasks; stops all when a signal arrives or a task ends."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("listening", host=host, port=port)
        running = [asyncio.ensure_future(task) for task in tasks(stop)]
        stopped = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopped, *running], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        for task in done:
            if task is not stopped and task.exception():
                log.error("task_failed", error=repr(task.exception()))
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        await runner.cleanup()
        log.info("stopped")
