"""HTTP edges: problem+json errors (RFC 9457), request bodies read into pydantic models,
and `/healthz`. Domain errors are mapped to status codes by each service's `error_map`."""

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from contracts.codec import page_json
from servicekit.health import HEALTH, serve_metrics
from servicekit.validation import json_path, unstorable

log = structlog.get_logger()

M = TypeVar("M", bound=BaseModel)
PROBLEM = "application/problem+json"
MAX_BODY = 1024 * 1024


class Problem(Exception):
    """An HTTP error with a problem+json body."""

    def __init__(self, status: int, title: str, detail: str | None = None, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        self.headers = dict(headers or {})  # e.g. Retry-After

    def response(self, instance: str | None = None) -> web.Response:
        body = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return web.json_response(body, status=self.status, content_type=PROBLEM, headers=self.headers)


def invalid(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> Problem:
    """A 422 that names the JSON path of every bad field."""
    errors = [
        {"path": json_path(prefix + tuple(item["loc"])), "message": item["msg"]}
        for item in error.errors(include_url=False)
    ]
    return Problem(422, "Invalid request", "; ".join(f"{e['path']}: {e['message']}" for e in errors), errors=errors)


async def read_json(request: web.Request, model: type[M]) -> M:
    if request.content_type != "application/json":
        raise Problem(415, "Unsupported media type", "send the body as application/json")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "Request body too large", f"at most {MAX_BODY} bytes")
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Problem(400, "Malformed JSON", str(error)) from None
    if problem := unstorable(data):
        raise Problem(400, "Malformed JSON", problem)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid(error) from None


def json_response(model: BaseModel | Mapping[str, Any], status: int = 200) -> web.Response:
    if isinstance(model, BaseModel):
        return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")
    return web.json_response(model, status=status)


def problem_middleware(error_map: Mapping[type[Exception], Callable[[Exception], Problem]]):
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        try:
            return await handler(request)
        except Problem as problem:
            return problem.response(request.path)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            response = Problem(error.status, error.reason).response(request.path)
            if "Allow" in error.headers:  # a 405 says what is allowed (RFC 9110)
                response.headers["Allow"] = error.headers["Allow"]
            return response
        except Exception as error:
            for error_type, to_problem in error_map.items():
                if isinstance(error, error_type):
                    return to_problem(error).response(request.path)
            log.exception("request_failed", path=request.path)
            return Problem(500, "Internal error").response(request.path)

    return middleware


def health_route(check: Callable[[], Awaitable[dict[str, Any]]] | None = None) -> list[web.RouteDef]:
    """/healthz (status ok or degraded, with what degrades it, and the service's `check`)
    and /metrics."""
    async def healthz(request: web.Request) -> web.Response:
        details = {}
        if check:
            try:
                details = await check()
            except Exception as error:  # e.g. the database away: say so, do not fail the probe
                HEALTH.degraded("health_check", repr(error))
            else:
                HEALTH.recovered("health_check")
        return web.json_response({**HEALTH.report(), **details})

    return [web.get("/healthz", healthz), web.get("/metrics", serve_metrics)]


def uuid_param(request: web.Request, name: str = "id") -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise Problem(404, "Not found", f"{request.match_info[name]!r} is not an id") from None


def page_request(request: web.Request, default_limit: int = 50, max_limit: int = 500) -> tuple[tuple | None, int]:
    """Reads `cursor` and `limit` from the query string; the cursor is opaque to clients."""
    try:
        limit = int(request.query.get("limit", default_limit))
    except ValueError:
        raise Problem(400, "Invalid query", "limit must be a whole number", errors=[{"path": "$.limit", "message": "not a whole number"}]) from None
    if not 1 <= limit <= max_limit:
        raise Problem(400, "Invalid query", f"limit must be between 1 and {max_limit}", errors=[{"path": "$.limit", "message": "out of range"}])
    cursor = request.query.get("cursor")
    if not cursor:
        return None, limit
    try:
        stamp, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return (datetime.fromisoformat(stamp), UUID(ident)), limit
    except ValueError:
        raise Problem(400, "Invalid query", "cursor is not one this API gave out", errors=[{"path": "$.cursor", "message": "unknown cursor"}]) from None


def page_response(items: list[BaseModel], limit: int) -> web.Response:
    """`{"items": [...], "next_cursor": ...}`; items must have `created_at` and `id`."""
    next_cursor = None
    if len(items) == limit:
        last = items[-1]
        next_cursor = base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.id}".encode()).decode()
    return web.Response(text=page_json([item.model_dump_json() for item in items], next_cursor),
                        content_type="application/json")
