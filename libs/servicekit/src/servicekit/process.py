"""Runs a service: its HTTP site and background tasks, until SIGTERM or SIGINT."""

import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable

import structlog
import uvloop
from aiohttp import web

from servicekit.logging import configure_logging
from servicekit.settings import CommonSettings
from servicekit.wiring import Service, background, create_app

log = structlog.get_logger()

Tasks = Callable[[asyncio.Event], list[Awaitable[None]]]


async def serve(app: web.Application, host: str, port: int, tasks: Tasks) -> bool:
    """Starts `app` and the tasks; stops all when a signal arrives or a task ends.
    Returns False when a task failed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    healthy = True
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("listening", host=host, port=port)
        running = [asyncio.ensure_future(task) for task in tasks(stop)]
        stopped = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopped, *running], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        for task in done:
            if task is not stopped and task.exception():
                healthy = False
                log.error("task_failed", error=repr(task.exception()))
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        await runner.cleanup()
        log.info("stopped")
    return healthy


def run_service(service: Service, settings: CommonSettings, port: int) -> None:
    """The whole of a service's `__main__`: logging, the app, its tasks, the exit code."""
    configure_logging(service.name, settings.log_level)
    app = create_app(service, settings)
    # The services allocate short-lived objects by the million (rows, events); the default
    # thresholds ran a young collection every 700 of them and a full one, over every module
    # loaded at start-up, far too often. Start-up's objects are frozen out of collection.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # uvloop: the same asyncio on a loop written in C (libuv): less CPU per event and per write.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if not runner.run(serve(app, settings.http_host, port, background(service, app, settings))):
            sys.exit(1)

