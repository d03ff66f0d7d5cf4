"""The one wiring of every service.

A service is declared as data (`Service`): the events it consumes (`Group`s of
`Consume`), the background tasks it runs, the routes it serves (`Routes`), what /healthz
adds, and one function, `adapters`, that makes its adapters. Handlers are plain
functions in the service's `handlers.py` whose first parameter is the event (a list of
events for a batch, the request for a route, the stop event for a task) and whose other
parameters are adapters, bound here by name:

    async def record_activation(event: CampaignActivated, uow: UnitOfWork) -> None: ...

    Consume(topics.CAMPAIGN_ACTIVATED, handlers.record_activation)

Every service can bind `settings`, `pool` and `publisher` (where it has Kafka) besides
what its `adapters` yields; a name nobody provides stops the service at start, naming
the handler.
"""

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from servicekit import resources
from servicekit.database import SHARED_SQL, Migrations
from servicekit.http import health_route, problem_middleware
from servicekit.kafka import ConsumerLoop, EventPublisher, Subscription, Topics
from servicekit.outbox import OutboxRelay
from servicekit.routes import Routes
from servicekit.settings import CommonSettings

Dependencies = Mapping[str, Any]
Adapters = Callable[[CommonSettings, asyncpg.Pool, EventPublisher | None], AbstractAsyncContextManager[dict]]
DEPENDENCIES = web.AppKey("dependencies", dict)


@dataclass(frozen=True)
class Consume:
    """One topic a group reads, and the handler of its events. `batch` handlers take the
    events of a partition's fetch together (at most `chunk`); `concurrency` lets that many
    independent events of one partition be handled at once. Both are a number or the name
    of a setting."""

    topic: str
    handler: Callable[..., Awaitable[None]]
    batch: bool = False
    chunk: int | str | None = None
    concurrency: int | str | None = None


@dataclass(frozen=True)
class Group:
    """One consumer group. `from_start_if` names a dependency, `async () -> bool`, asked
    when partitions are assigned: True reads them from their start (see Subscription)."""

    name: str
    consumes: tuple[Consume, ...]
    from_start_if: str | None = None


@dataclass(frozen=True)
class Service:
    name: str
    schema: str
    migrations: Path
    adapters: Adapters
    groups: tuple[Group, ...] = ()
    tasks: tuple[Callable[..., Awaitable[None]], ...] = ()
    routes: Routes | None = None
    errors: Mapping[type[Exception], Callable[[Exception], Any]] = field(default_factory=dict)
    health: Callable[..., Awaitable[dict]] | None = None
    middlewares: Callable[[CommonSettings], Sequence] = lambda settings: ()
    outbox: bool = False  # the outbox's migrations, and its relay as a task
    kafka: bool = True

    def migration_owners(self) -> list[Migrations]:
        """The outbox's migrations (when it has one), then its own."""
        return ([SHARED_SQL] if self.outbox else []) + [Migrations(self.schema, self.migrations)]


def bind(function: Callable, dependencies: Dependencies, skip: int = 1) -> Callable:
    """`function` with its parameters after the first `skip` taken from `dependencies`."""
    return functools.partial(function, **_arguments(function, dependencies, skip))


def _arguments(function: Callable, dependencies: Dependencies, skip: int) -> dict[str, Any]:
    parameters = list(inspect.signature(function).parameters.values())[skip:]
    missing = [p.name for p in parameters if p.name not in dependencies and p.default is p.empty]
    if missing:
        raise LookupError(f"{function.__module__}.{function.__qualname__} needs {missing}: no adapter has that name")
    return {p.name: dependencies[p.name] for p in parameters if p.name in dependencies}


def _setting(value: int | str | None, settings: CommonSettings) -> int | None:
    return getattr(settings, value) if isinstance(value, str) else value


def subscription(group: Group, dependencies: Dependencies) -> Subscription:
    settings = dependencies["settings"]
    single = {c.topic: bind(c.handler, dependencies) for c in group.consumes if not c.batch}
    batch = {c.topic: bind(c.handler, dependencies) for c in group.consumes if c.batch}
    chunks = {c.topic: _setting(c.chunk, settings) for c in group.consumes if c.chunk is not None}
    concurrency = {c.topic: _setting(c.concurrency, settings) for c in group.consumes if c.concurrency is not None}
    start = dependencies[group.from_start_if] if group.from_start_if else None
    return Subscription(group.name, single, batch_handlers=batch, chunks=chunks, concurrency=concurrency,
                        from_start_if=start)


def check(service: Service, dependencies: Dependencies) -> None:
    """Every handler, task, route and health check finds what it asks for."""
    for group in service.groups:
        subscription(group, dependencies)
    for task in service.tasks:
        bind(task, dependencies)
    missing = sorted(service.routes.needs() - set(dependencies)) if service.routes else []
    if missing:
        raise LookupError(f"{service.name}'s routes need {missing}: no adapter has that name")
    if service.health:
        bind(service.health, dependencies, skip=0)


@asynccontextmanager
async def dependencies(service: Service, settings: CommonSettings, pool: asyncpg.Pool,
                       publisher: EventPublisher | None) -> AsyncIterator[dict[str, Any]]:
    """What the service's handlers can take, by name: its adapters and the basics. The
    process and the integration tests (on a test's own pool) make them the same way."""
    async with service.adapters(settings, pool, publisher) as made:
        yield {"settings": settings, "pool": pool, "publisher": publisher, **made}


def routes_app(service: Service, settings: CommonSettings, wired: Mapping[str, Any]) -> web.Application:
    """The service's routes and middlewares over `wired` (no migrations, no Kafka): what
    an integration test serves on its own pool."""
    app = _app(service, settings)
    if service.routes:
        app.add_routes(service.routes.route_defs(lambda request: wired))
    return app


def _app(service: Service, settings: CommonSettings) -> web.Application:
    return web.Application(
        middlewares=[*service.middlewares(settings), problem_middleware(service.errors)],
        client_max_size=1024 * 1024,
    )


def create_app(service: Service, settings: CommonSettings) -> web.Application:
    app = _app(service, settings)
    app.cleanup_ctx.append(resources.postgres(settings, service.schema, service.migration_owners()))
    if service.kafka:
        app.cleanup_ctx.append(resources.kafka_publisher(settings))

    async def adapters(app: web.Application) -> AsyncIterator[None]:
        async with dependencies(service, settings, app[resources.POOL], app.get(resources.PUBLISHER)) as wired:
            app[DEPENDENCIES] = wired
            check(service, wired)
            yield

    app.cleanup_ctx.append(adapters)

    async def health() -> dict:
        return await bind(service.health, app[DEPENDENCIES], skip=0)() if service.health else {}

    if service.routes:
        app.add_routes(service.routes.route_defs(lambda request: request.app[DEPENDENCIES]))
    app.add_routes(health_route(health))
    return app


def background(service: Service, app: web.Application, settings: CommonSettings):
    """The tasks `serve` runs beside the app once it has started: a consumer loop per
    group, the service's tasks, the outbox relay."""

    def tasks(stop: asyncio.Event) -> list[Awaitable[None]]:
        dependencies = {**app[DEPENDENCIES], "stop": stop}
        names = Topics(settings.kafka_topic_prefix)
        publisher = dependencies["publisher"]
        running = [
            ConsumerLoop(settings.kafka_bootstrap_servers, names, subscription(group, dependencies), publisher).run(stop)
            for group in service.groups
        ]
        running += [bind(task, dependencies)(stop) for task in service.tasks]
        if service.outbox:
            limit = getattr(settings, "kafka_message_bytes", None)
            relay = OutboxRelay(dependencies["pool"], publisher, **({"max_message_bytes": limit} if limit else {}))
            running.append(relay.run(stop))
        return running

    return tasks
