import pytest
from pydantic import ValidationError

from contracts.steps import CONTENT_BYTES, FLOW_CONTENT_BYTES
from flow_engine.domain import FlowDraft
from servicekit.http import invalid

EMAIL = {"type": "SEND_EMAIL", "config": {"subject": "Hi {{ first_name }}", "text": "Hello"}}


def problems(steps) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as error:
        FlowDraft(name="f", steps=steps)
    return [(e["path"], e["message"]) for e in invalid(error.value).extra["errors"]]


def test_a_template_that_does_not_parse_names_its_step_and_field():
    [(path, message)] = problems([EMAIL, {"type": "SEND_EMAIL", "config": {"subject": "{% if %}", "text": "x"}}])
    assert path == "$.steps[1].config.subject" and "does not parse" in message


@pytest.mark.parametrize("wait, words", [
    ({"days": -1}, "greater than or equal to 0"),
    ({"days": 0}, "longer than zero"),
    ({"days": 400}, "less than or equal to 366"),
    ({"days": 300, "hours": 24 * 100}, "at most 366 days"),
])
def test_negative_empty_or_absurd_waits_are_refused(wait, words):
    [(path, message)] = problems([EMAIL, {"type": "WAIT", "config": wait}])
    assert path.startswith("$.steps[1].config") and words in message


def test_an_unknown_step_type_is_refused_at_its_index():
    [(path, _)] = problems([EMAIL, {"type": "SEND_SMS", "config": {}}])
    assert path == "$.steps[1]"


def test_a_flow_with_no_email_is_refused():
    [(path, message)] = problems([{"type": "WAIT", "config": {"hours": 1}}])
    assert path == "$.steps" and "at least one SEND_EMAIL" in message


@pytest.mark.parametrize("source", ["{{ first_name.__class__.__mro__ }}", "{{ attributes['__dict__'] }}"])
def test_a_template_reaching_for_private_attributes_is_refused(source):
    [(path, message)] = problems([{"type": "SEND_EMAIL", "config": {"subject": "s", "text": source}}])
    assert path == "$.steps[0].config.text" and "forbidden construct" in message


def test_the_sandbox_renders_private_attributes_as_nothing_even_unchecked():
    from contracts.templates import render

    assert render("{{ first_name.__class__ }}", {"first_name": "Ada"}) == ""


def test_an_email_too_large_to_travel_is_refused_naming_the_limit():
    big = {"type": "SEND_EMAIL", "config": {"subject": "Hi", "html": "é" * 300_000}}  # 600,000 bytes
    [(path, message)] = problems([EMAIL, big])
    assert path == "$.steps[1].config" and f"at most {CONTENT_BYTES:,}" in message


def test_a_flow_whose_emails_together_are_too_large_is_refused_naming_the_limit():
    each = {"type": "SEND_EMAIL", "config": {"subject": "Hi", "text": "x" * 400_000}}
    assert FlowDraft(name="f", steps=[each, each])
    [(path, message)] = problems([each, {"type": "WAIT", "config": {"days": 1}}, each, each])
    assert path == "$.steps" and f"at most {FLOW_CONTENT_BYTES:,}" in message
