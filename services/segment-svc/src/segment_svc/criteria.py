"""Segment criteria: a tree of AND/OR groups over contact fields, validated and compiled
to one parameterised SQL condition. Pure: no database here, only the text and the values.

A condition that cannot be decided for a contact (a missing attribute, or one of another
type than the value) does not match; the negative operators (neq, not_in, not_exists)
match it.
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Op = Literal[
    "eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "starts_with",
    "exists", "not_exists", "before", "after", "within_last_days",
]
# The contact columns a condition may name, and their kind.
COLUMNS = {
    "email": "text",
    "first_name": "text",
    "last_name": "text",
    "timezone": "text",
    "marketing_opt_in": "bool",
    "created_at": "time",
}
_ATTRIBUTE = re.compile(r"^attributes\.([A-Za-z0-9_\-]{1,64})$")
_NEGATIVE = {"neq": "eq", "not_in": "in", "not_exists": "exists"}
MAX_DEPTH = 10


def _kind_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("value must be an ISO date or date-time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date or date-time") from None
    if len(value) == 10:  # a date: its first instant, UTC
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


FIELD_PATTERN = "^(" + "|".join(COLUMNS) + r"|attributes\.[A-Za-z0-9_\-]{1,64})$"


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(json_schema_extra={"pattern": FIELD_PATTERN})
    op: Op
    value: Any = None

    @property
    def attribute(self) -> str | None:
        match = _ATTRIBUTE.match(self.field)
        return match.group(1) if match else None

    @model_validator(mode="after")
    def _fits(self) -> "Condition":
        if self.field not in COLUMNS and self.attribute is None:
            raise ValueError(
                f"unknown field {self.field!r}: use one of {sorted(COLUMNS)} or attributes.<name>"
            )
        _check_value(self.op, self.value, COLUMNS.get(self.field))
        return self


def _check_value(op: str, value: Any, column_kind: str | None) -> None:
    kind = _kind_of(value)
    if op in ("exists", "not_exists"):
        if value is not None:
            raise ValueError(f"{op} takes no value")
    elif op in ("eq", "neq"):
        if kind is None:
            raise ValueError(f"{op} needs a string, number or boolean value")
        if column_kind and kind != column_kind:
            raise ValueError(f"{op} on this field needs a {column_kind} value, not {kind}")
    elif op in ("gt", "gte", "lt", "lte"):
        if kind != "number":
            raise ValueError(f"{op} needs a number (use before/after for dates)")
        if column_kind:
            raise ValueError(f"{op} compares numbers; this field is {column_kind}")
    elif op in ("in", "not_in"):
        kinds = {_kind_of(item) for item in value} if isinstance(value, list) else {None}
        if not value or len(kinds) != 1 or kinds & {None, "bool"}:
            raise ValueError(f"{op} needs a non-empty list of strings or of numbers")
        if column_kind and kinds != {column_kind}:
            raise ValueError(f"{op} on this field needs {column_kind} values")
    elif op in ("contains", "starts_with"):
        if kind != "text" or not value:
            raise ValueError(f"{op} needs a non-empty string")
        if column_kind not in (None, "text"):
            raise ValueError(f"{op} works on text; this field is {column_kind}")
    elif op in ("before", "after"):
        _instant(value)
        if column_kind not in (None, "time"):
            raise ValueError(f"{op} works on dates; this field is {column_kind}")
    elif op == "within_last_days":
        if kind != "number" or isinstance(value, float) or value < 0:
            raise ValueError("within_last_days needs a whole number of days, 0 or more")
        if column_kind not in (None, "time"):
            raise ValueError(f"{op} works on dates; this field is {column_kind}")


def _node_kind(node: Any) -> str:
    if isinstance(node, dict):
        return "GROUP" if "operator" in node else "CONDITION"
    return "GROUP" if isinstance(node, Group) else "CONDITION"


class Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    operator: Literal["AND", "OR"]
    conditions: list[
        Annotated[
            Annotated["Group", Tag("GROUP")] | Annotated[Condition, Tag("CONDITION")],
            Discriminator(_node_kind),
        ]
    ] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _not_too_deep(self) -> "Group":
        if self.depth() > MAX_DEPTH:
            raise ValueError(f"criteria may nest at most {MAX_DEPTH} groups deep")
        return self

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.conditions if isinstance(c, Group)), default=0)


class _Sql:
    """Collects the values of one query and hands out their `$n` placeholders."""

    def __init__(self, first: int) -> None:
        self.values: list[Any] = []
        self._first = first

    def param(self, value: Any) -> str:
        self.values.append(value)
        return f"${self._first + len(self.values) - 1}"


def compile_criteria(criteria: Group, now: datetime, first_param: int = 1) -> tuple[str, list[Any]]:
    """The SQL condition over table `contacts` and its values, numbered from `first_param`."""
    sql = _Sql(first_param)
    return _group(criteria, sql, now), sql.values


def _group(group: Group, sql: _Sql, now: datetime) -> str:
    parts = [
        _group(node, sql, now) if isinstance(node, Group) else _condition(node, sql, now)
        for node in group.conditions
    ]
    return "(" + f" {group.operator} ".join(parts) + ")"


def _condition(condition: Condition, sql: _Sql, now: datetime) -> str:
    positive = _NEGATIVE.get(condition.op)
    if positive:
        return f"NOT {_condition(condition.model_copy(update={'op': positive}), sql, now)}"
    if condition.op == "exists" or (condition.op == "eq" and condition.attribute is not None):
        return _test(condition, sql, now)  # never NULL; and bare, `@>` can use the GIN index
    return f"COALESCE({_test(condition, sql, now)}, false)"


def _accessor(condition: Condition, kind: str, sql: _Sql) -> str:
    """An SQL expression of the field as `kind`, NULL where the contact has no such value."""
    name = condition.attribute
    if name is None:
        return condition.field
    key = sql.param(name) + "::text"
    json_type = {"text": "string", "number": "number", "bool": "boolean", "time": "string"}[kind]
    cast = {"text": "", "number": "::numeric", "bool": "::boolean", "time": ""}[kind]
    value = f"CASE WHEN jsonb_typeof(attributes -> {key}) = '{json_type}' THEN (attributes ->> {key}){cast} END"
    return f"try_timestamptz({value})" if kind == "time" else value


def _test(condition: Condition, sql: _Sql, now: datetime) -> str:
    op, value = condition.op, condition.value
    if op == "exists":
        if condition.attribute is None:
            return f"({condition.field} IS NOT NULL)"
        key = sql.param(condition.attribute) + "::text"
        return f"(jsonb_typeof(attributes -> {key}) IS DISTINCT FROM 'null' AND attributes ? {key})"
    if op == "eq":
        if condition.attribute is not None:  # containment: served by the GIN index
            return f"(attributes @> {sql.param({condition.attribute: value})}::jsonb)"
        return f"({condition.field} = {sql.param(value)})"
    if op in ("gt", "gte", "lt", "lte"):
        symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"({_accessor(condition, 'number', sql)} {symbol} {sql.param(Decimal(str(value)))})"
    if op == "in":
        if _kind_of(value[0]) == "number":
            return f"({_accessor(condition, 'number', sql)} = ANY({sql.param([Decimal(str(v)) for v in value])}::numeric[]))"
        return f"({_accessor(condition, 'text', sql)} = ANY({sql.param(value)}::text[]))"
    if op == "contains":
        text = f"(strpos({_accessor(condition, 'text', sql)}, {sql.param(value)}) > 0)"
        if condition.attribute is None:
            return text
        return f"({text} OR (attributes -> {sql.param(condition.attribute)}::text) @> {sql.param([value])}::jsonb)"
    if op == "starts_with":
        return f"starts_with({_accessor(condition, 'text', sql)}, {sql.param(value)})"
    if op in ("before", "after"):
        symbol = "<" if op == "before" else ">"
        return f"({_accessor(condition, 'time', sql)} {symbol} {sql.param(_instant(value))})"
    # within_last_days
    field = _accessor(condition, "time", sql)
    return f"({field} BETWEEN {sql.param(now - timedelta(days=value))} AND {sql.param(now)})"
