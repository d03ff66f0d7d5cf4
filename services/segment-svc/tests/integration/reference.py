"""An evaluator of criteria written from their documented meaning (segment-svc README,
criteria.py docstring), in plain Python and independent of the SQL compiler: the property
test holds the two to the same answers."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$")
_NEGATIVE = {"neq": "eq", "not_in": "in", "not_exists": "exists"}


def matches(node: dict, contact: dict, now: datetime) -> bool:
    if "operator" in node:
        results = [matches(child, contact, now) for child in node["conditions"]]
        return all(results) if node["operator"] == "AND" else any(results)
    if node["op"] in _NEGATIVE:
        return not matches({**node, "op": _NEGATIVE[node["op"]]}, contact, now)
    present, value = _field(node["field"], contact)
    return _test(node["op"], node.get("value"), present, value, now)


def _field(name: str, contact: dict):
    if name.startswith("attributes."):
        key = name.split(".", 1)[1]
        return key in contact["attributes"], contact["attributes"].get(key)
    return True, contact[name]


def _kind(value) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    return None


def _instant(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO.match(value):
        return None
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _test(op: str, wanted, present: bool, value, now: datetime) -> bool:
    if op == "exists":
        return present and value is not None
    if op == "eq":
        return _kind(value) == _kind(wanted) and value == wanted
    if op in ("gt", "gte", "lt", "lte"):
        if _kind(value) != "number":
            return False
        a, b = Decimal(str(value)), Decimal(str(wanted))
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    if op == "in":
        kind = _kind(wanted[0])
        return _kind(value) == kind and any(Decimal(str(value)) == Decimal(str(w)) if kind == "number"
                                            else value == w for w in wanted)
    if op == "contains":
        return (isinstance(value, str) and wanted in value) or (isinstance(value, list) and wanted in value)
    if op == "starts_with":
        return isinstance(value, str) and value.startswith(wanted)
    instant = _instant(value)
    if instant is None:
        return False
    if op == "before":
        return instant < _instant(wanted)
    if op == "after":
        return instant > _instant(wanted)
    return now - timedelta(days=wanted) <= instant <= now  # within_last_days
