"""OpenAPI 3.1 documents built from the pydantic models the handlers really use: each
service declares its operations next to its routes; nothing is written by hand."""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"


class Problem(BaseModel):
    """RFC 9457 problem details, with the JSON path of each invalid field."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    query: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> JSON schema
    raw_body: dict[str, dict[str, Any]] | None = None  # media type -> schema, for bodies that are not JSON
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> JSON schema; ids are UUIDs


def page_of(model: type[BaseModel]) -> type[BaseModel]:
    """The list answer: `{"items": [...], "next_cursor": ...}`."""
    return create_model(f"{model.__name__}Page", items=(list[model], ...), next_cursor=(str | None, None))


PAGING = {
    "cursor": {"type": "string", "description": "next_cursor of the previous page"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
}


def document(title: str, operations: list[Operation]) -> dict[str, Any]:
    models = {(op.body, "validation") for op in operations if op.body}
    models |= {(op.response, "serialization") for op in operations if op.response}
    models.add((Problem, "serialization"))
    refs, schemas = models_json_schema(sorted(models, key=lambda m: (m[0].__name__, m[1])), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
    }


def _operation(op: Operation, refs) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": refs[(Problem, "serialization")]}}
    answer: dict[str, Any] = {"description": "OK"}
    if op.response:
        answer["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    responses = {str(op.status): answer}
    for status in sorted({*op.errors, 401}):
        responses[str(status)] = {"description": _REASONS.get(status, "Error"), "content": problem}
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": op.path_params.get(name, {"type": "string", "format": "uuid"})}
                  for name in _path_names(op.path)]
    parameters += [{"name": name, "in": "query", "required": False, "schema": schema}
                   for name, schema in op.query.items()]
    spec: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op), "responses": responses}
    if parameters:
        spec["parameters"] = parameters
    if op.body:
        spec["requestBody"] = {"required": True,
                               "content": {"application/json": {"schema": refs[(op.body, "validation")]}}}
    elif op.raw_body:
        spec["requestBody"] = {"required": True, "content": {kind: {"schema": schema} for kind, schema in op.raw_body.items()}}
    return spec


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _operation_id(op: Operation) -> str:
    words = [part.strip("{}") for part in op.path.strip("/").split("/")[1:]]
    return "_".join([op.method.lower(), *words])


_REASONS = {400: "Bad request", 401: "Unauthorized", 404: "Not found", 409: "Conflict", 413: "Too large",
            415: "Unsupported media type", 422: "Invalid", 503: "Unavailable"}


def merge(base: dict[str, Any], *others: dict[str, Any]) -> dict[str, Any]:
    """One document of several services' (the gateway's view)."""
    merged = {**base, "paths": dict(base["paths"]),
              "components": {**base["components"], "schemas": dict(base["components"]["schemas"])}}
    for other in others:
        merged["paths"].update(other.get("paths", {}))
        merged["components"]["schemas"].update(other.get("components", {}).get("schemas", {}))
    return merged


def resource_operations(path: str, noun: str, model: type[BaseModel], create: type[BaseModel],
                        update: type[BaseModel], update_method: str = "PUT",
                        conflicts: tuple[int, ...] = ()) -> list[Operation]:
    """The operations of `servicekit.routes.Routes.resource`; `conflicts` adds 409 where a
    create or change can collide with what exists (a contact's email)."""
    item = path + "/{id}"
    return [
        Operation("POST", path, f"Create a {noun}", body=create, response=model, status=201,
                  errors=(400, 413, 415, 422, *conflicts)),
        Operation("GET", path, f"List {noun}s", response=page_of(model), errors=(400,), query=PAGING),
        Operation("GET", item, f"Get a {noun}", response=model, errors=(404,)),
        Operation(update_method, item, f"Change a {noun}", body=update, response=model,
                  errors=(400, 404, 413, 415, 422, *conflicts)),
        Operation("DELETE", item, f"Delete a {noun}", status=204, errors=(404,)),
    ]
