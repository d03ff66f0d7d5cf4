"""The template language of emails: Jinja2 in its sandbox, shared by the flow-engine
(which refuses templates that do not parse) and the mailer (which renders them)."""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(ValueError):
    """A template that does not parse, or tries what the sandbox forbids."""


@lru_cache(maxsize=2)
def _environment(html: bool = False) -> ImmutableSandboxedEnvironment:
    # ChainableUndefined renders a missing field (or attribute of one) as empty text, so a
    # contact without a first name still gets an email; `{{ first_name | default("there") }}`
    # gives a fallback. HTML parts escape what they insert: a name is not markup.
    return ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=html)


@lru_cache(maxsize=4096)  # the same templates arrive with every send of a campaign
def check_template(source: str) -> None:
    """Refuses a template that does not parse, or that reaches for private attributes
    (`x.__class__`, `x["_y"]`): the sandbox would render them empty, and an author who
    wrote one deserves to hear so when saving, not to send blank emails."""
    try:
        tree = _environment().parse(source)
    except TemplateSyntaxError as error:
        raise TemplateError(f"template does not parse (line {error.lineno}): {error.message}") from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateError(f"template uses a forbidden construct (line {node.lineno}): access to {name!r}")


@lru_cache(maxsize=512)
def _compiled(source: str, html: bool):
    return _environment(html).from_string(source)


def render(source: str, fields: Mapping[str, Any], *, html: bool = False) -> str:
    try:
        return _compiled(source, html).render(fields)
    except SecurityError as error:
        raise TemplateError(f"template uses a forbidden construct: {error}") from None
