"""The template language of emails: Jinja2 in its sandbox, shared by the flow-engine
(which refuses templates that do not parse) and the mailer (which renders them)."""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape


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
    environment = _environment(html)
    return _Substitution.of(environment.parse(source), environment) or environment.from_string(source)


class _Substitution:
    """A template of text and bare `{{ field }}`s, most emails' templates, rendered by
    joining its parts: what Jinja renders for it (unit-tested against Jinja), in a fifth of
    the time (Jinja makes a context and a generator for every render, twice an email)."""

    def __init__(self, parts: list[str | nodes.Name], html: bool) -> None:
        self._parts = [part if isinstance(part, str) else (part.name,) for part in parts]
        self._html = html

    @classmethod
    def of(cls, tree: nodes.Template, environment: ImmutableSandboxedEnvironment) -> "_Substitution | None":
        parts: list[str | nodes.Name] = []
        for output in tree.body:
            if not isinstance(output, nodes.Output):
                return None
            for node in output.nodes:
                if isinstance(node, nodes.TemplateData):
                    parts.append(node.data)  # text as written, never escaped
                elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in environment.globals:
                    parts.append(node)
                else:
                    return None
        return cls(parts, environment.autoescape is True)

    def render(self, fields: Mapping[str, Any]) -> str:
        rendered = []
        for part in self._parts:
            if isinstance(part, str):
                rendered.append(part)
            elif (value := fields.get(part[0], _MISSING)) is not _MISSING:  # missing: empty (ChainableUndefined)
                rendered.append(escape(value) if self._html else str(value))
        return "".join(rendered)


_MISSING = object()


def render(source: str, fields: Mapping[str, Any], *, html: bool = False) -> str:
    try:
        return _compiled(source, html).render(fields)
    except SecurityError as error:
        raise TemplateError(f"template uses a forbidden construct: {error}") from None
