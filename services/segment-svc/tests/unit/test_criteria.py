import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from segment_svc.segments import SegmentDraft
from servicekit.http import invalid

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def paths_of(criteria) -> list[str]:
    with pytest.raises(ValidationError) as error:
        SegmentDraft(name="s", criteria=criteria)
    return [e["path"] for e in invalid(error.value).extra["errors"]]


def test_an_unknown_field_is_named_by_its_path_in_the_tree():
    criteria = {"operator": "AND", "conditions": [
        {"field": "email", "op": "exists"},
        {"operator": "OR", "conditions": [{"field": "shoe_size", "op": "eq", "value": 42}]},
    ]}
    assert paths_of(criteria) == ["$.criteria.conditions[1].conditions[0]"]


def test_an_unknown_op_is_named_by_its_path():
    criteria = {"operator": "AND", "conditions": [{"field": "email", "op": "resembles", "value": "x"}]}
    assert paths_of(criteria) == ["$.criteria.conditions[0].op"]


@pytest.mark.parametrize("condition", [
    {"field": "marketing_opt_in", "op": "eq", "value": "yes"},
    {"field": "attributes.age", "op": "gt", "value": "old"},
    {"field": "attributes.tags", "op": "in", "value": []},
    {"field": "created_at", "op": "before", "value": "yesterday"},
    {"field": "email", "op": "exists", "value": 1},
    {"field": "attributes.seen", "op": "within_last_days", "value": -1},
])
def test_a_value_of_the_wrong_type_is_refused(condition):
    assert paths_of({"operator": "AND", "conditions": [condition]}) == ["$.criteria.conditions[0]"]


def test_valid_criteria_compile_to_parameterised_sql_with_no_value_inlined():
    from segment_svc.criteria import compile_criteria

    draft = SegmentDraft(name="s", criteria={"operator": "OR", "conditions": [
        {"field": "attributes.plan", "op": "eq", "value": "pro'; DROP TABLE contacts; --"},
        {"field": "first_name", "op": "starts_with", "value": "Ad"},
        {"field": "attributes.age", "op": "not_in", "value": [1, 2]},
    ]})
    sql, values = compile_criteria(draft.criteria, NOW)
    assert "DROP" not in sql and "Ad" not in sql
    assert {"plan": "pro'; DROP TABLE contacts; --"} in values and "Ad" in values
    assert max(int(n) for n in re.findall(r"\$(\d+)", sql)) == len(values)
