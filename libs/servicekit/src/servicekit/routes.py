"""Routes declared once, with their OpenAPI operation:

    routes = Routes("flow-engine")

    @routes.post("/api/campaigns", "Create a draft campaign", body=CampaignDraft, response=Campaign,
                 status=201, errors=(400, 422))
    async def create_campaign(request: web.Request, campaigns: CampaignRepository) -> web.Response: ...

A handler's parameters after the request are adapters, bound by name (servicekit.wiring).
A route without a summary is served but left out of the document (the gateway's proxy,
tracking links).
"""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from servicekit.http import json_response, page_request, page_response, read_json, uuid_param
from servicekit.openapi import Operation, document, resource_operations

Handler = Callable[..., Any]


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    handler: Handler
    needs: tuple[str, ...]
    operation: Operation | None


def _needs(handler: Handler) -> tuple[str, ...]:
    return tuple(list(inspect.signature(handler).parameters)[1:])


class Routes:
    def __init__(self, title: str, openapi_path: str | None = "/api/openapi.json") -> None:
        self.title = title
        self.openapi_path = openapi_path
        self._routes: list[_Route] = []
        self._static: list[tuple[str, Path]] = []

    def route(self, method: str, path: str, summary: str | None = None, **operation: Any):
        def register(handler: Handler) -> Handler:
            spec = Operation(method, path, summary, **operation) if summary else None
            self._routes.append(_Route(method, path, handler, _needs(handler), spec))
            return handler

        return register

    def get(self, path: str, summary: str | None = None, **operation: Any):
        return self.route("GET", path, summary, **operation)

    def post(self, path: str, summary: str | None = None, **operation: Any):
        return self.route("POST", path, summary, **operation)

    def put(self, path: str, summary: str | None = None, **operation: Any):
        return self.route("PUT", path, summary, **operation)

    def patch(self, path: str, summary: str | None = None, **operation: Any):
        return self.route("PATCH", path, summary, **operation)

    def delete(self, path: str, summary: str | None = None, **operation: Any):
        return self.route("DELETE", path, summary, **operation)

    def resource(self, path: str, noun: str, repository: str, model: type[BaseModel], create: type[BaseModel],
                 update: type[BaseModel], update_method: str = "PUT", conflicts: tuple[int, ...] = ()) -> None:
        """Create, list, get, change and delete of one resource, over the adapter named
        `repository`, which has `add`, `page`, `get`, `update` and `delete`."""

        async def create_one(request: web.Request, store) -> web.Response:
            return json_response(await store.add(await read_json(request, create)), status=201)

        async def list_page(request: web.Request, store) -> web.Response:
            after, limit = page_request(request)
            return page_response(await store.page(after, limit), limit)

        async def get_one(request: web.Request, store) -> web.Response:
            return json_response(await store.get(uuid_param(request)))

        async def update_one(request: web.Request, store) -> web.Response:
            ident = uuid_param(request)
            return json_response(await store.update(ident, await read_json(request, update)))

        async def delete_one(request: web.Request, store) -> web.Response:
            await store.delete(uuid_param(request))
            return web.Response(status=204)

        operations = resource_operations(path, noun, model, create, update, update_method, conflicts)
        for handler, operation in zip((create_one, list_page, get_one, update_one, delete_one), operations, strict=True):
            self._routes.append(_Route(operation.method, operation.path, _renamed(handler, repository),
                                       (repository,), operation))

    def static(self, prefix: str, directory: Path) -> None:
        """Files served as they are under `prefix` (GET and HEAD), left out of the document."""
        self._static.append((prefix, directory))

    def operations(self) -> list[Operation]:
        return [route.operation for route in self._routes if route.operation]

    def document(self) -> dict[str, Any]:
        return document(self.title, self.operations())

    def needs(self) -> set[str]:
        return {name for route in self._routes for name in route.needs}

    def route_defs(self, dependencies_of: Callable[[web.Request], Mapping[str, Any]]) -> list[web.RouteDef]:
        defs = [web.get(r.path, _bound(r, dependencies_of)) if r.method == "GET"  # HEAD too
                else web.route(r.method, r.path, _bound(r, dependencies_of)) for r in self._routes]
        defs += [web.static(prefix, directory) for prefix, directory in self._static]
        if self.openapi_path:
            spec = self.document()

            async def openapi(request: web.Request) -> web.Response:
                return web.json_response(spec)

            defs.append(web.get(self.openapi_path, openapi))
        return defs


def _renamed(handler: Handler, name: str) -> Handler:
    """The resource handler, taking its repository under the service's name for it."""

    async def named(request: web.Request, **dependencies: Any):
        return await handler(request, dependencies[name])

    named.__name__ = handler.__name__
    return named


def _bound(route: _Route, dependencies_of: Callable[[web.Request], Mapping[str, Any]]):
    async def handle(request: web.Request):
        dependencies = dependencies_of(request)
        return await route.handler(request, **{name: dependencies[name] for name in route.needs})

    return handle
