"""contracts.templates renders a template of text and bare fields itself: it must render
exactly what Jinja (the same sandboxed environment) renders."""

import pytest

from contracts import templates
from contracts.templates import _environment, render

TEMPLATES = [
    "Hi {{ first_name }}", "{{first_name}}{{ last_name }}!", "no fields at all", "", "trailing newline\n",
    '<p>Hello {{ first_name }}, <a href="https://shop.example/new?a=1&b=2">see</a></p>',
    "{{ range }} and {{ dict }}", "{{ first_name | upper }}", "{{ first_name ~ last_name }}",
    "{% if first_name %}Hi {{ first_name }}{% endif %}", "{{ custom.city }}", "{{ missing }}-{{ missing.deeper }}",
    "{{ count }} {{ flag }} {{ nothing }} {{ tags }}", "  {{- first_name -}}  x", "{# a comment #}{{ first_name }}",
    "{{ 'literal' }}", "{% raw %}{{ first_name }}{% endraw %}",
]
FIELDS = [
    {"first_name": "Ada", "last_name": "Lovelace"},
    {"first_name": "<b>O'Brien & \"Sons\"</b>", "last_name": None},
    {"first_name": None, "count": 3, "flag": True, "nothing": None, "tags": ["a", "<b>"], "custom": {"city": "Köln"}},
    {},
]


@pytest.mark.parametrize("html", [False, True], ids=["text", "html"])
@pytest.mark.parametrize("source", TEMPLATES)
def test_a_template_renders_as_jinja_renders_it(source, html):
    jinja = _environment(html).from_string(source)
    for fields in FIELDS:
        assert render(source, fields, html=html) == jinja.render(fields), fields


def test_text_and_bare_fields_are_rendered_without_jinja_and_anything_else_with_it():
    assert isinstance(templates._compiled("Hi {{ first_name }}", True), templates._Substitution)
    assert not isinstance(templates._compiled("Hi {{ first_name | upper }}", True), templates._Substitution)
    assert not isinstance(templates._compiled("{{ range }}", False), templates._Substitution)
