"""Param templates: sandboxed Jinja2 over an alert's labels and annotations.

Policies come from YAML that many people edit, so templates run in Jinja2's immutable
sandbox (no attribute walks to `__class__`, no mutation) with StrictUndefined: a label the
alert lacks is an error recorded against that alert, never an empty string that would turn
`delete pod {{ labels.pod }}` into something else.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(ValueError):
    """A template that does not compile or cannot render for this alert."""


_ENV = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
)


def is_template(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@dataclass(frozen=True)
class CompiledParam:
    """One param: a literal, or a compiled template and the names it reads.

    `lookup` is set for the overwhelmingly common `{{ labels.x }}` / `{{ annotations.x }}`:
    a dictionary lookup gives the same answer as Jinja (including the error for a missing
    key) at a twentieth of the cost, which matters when an alert storm meets many policies.
    """

    literal: Any
    template: jinja2.Template | None
    variables: frozenset[str]
    lookup: tuple[str, str] | None = None


def compile_param(value: Any) -> CompiledParam:
    if not is_template(value):
        return CompiledParam(value, None, frozenset())
    return _compile_template(value)


# Compiling costs ~0.4 ms and thousands of policies share a few templates
# ("{{ labels.namespace }}"); a compiled template is immutable and safe to share.
@functools.lru_cache(maxsize=4096)
def _compile_template(value: str) -> CompiledParam:
    try:
        ast = _ENV.parse(value)
        template = _ENV.from_string(value)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None
    variables = frozenset(jinja2.meta.find_undeclared_variables(ast))
    simple = _SIMPLE.fullmatch(value)
    lookup = None
    if simple and not hasattr(dict, simple.group(2)):  # `labels.items` means the method
        lookup = (simple.group(1), simple.group(2))
    return CompiledParam(None, template, variables, lookup)


_SIMPLE = re.compile(r"\{\{\s*(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def render_param(param: CompiledParam, context: dict[str, Any]) -> Any:
    if param.template is None:
        return param.literal
    if param.lookup is not None:
        source, key = param.lookup
        try:
            return str(context[source][key]).strip()
        except KeyError:
            raise TemplateError(f"the alert has no {key!r}") from None
    try:
        return param.template.render(context).strip()
    except jinja2.UndefinedError as exc:
        raise TemplateError(_undefined_message(exc)) from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"refused by the template sandbox: {exc}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(str(exc)) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None


def _undefined_message(exc: jinja2.UndefinedError) -> str:
    message = str(exc.message or exc)
    # "'dict object' has no attribute 'pod'" → "missing label or annotation 'pod'"
    if "has no attribute" in message:
        missing = message.rsplit("has no attribute", 1)[1].strip()
        return f"the alert has no {missing}"
    return message


def alert_context(
    labels: dict[str, str], annotations: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """What templates see: `labels`, `annotations`, and alert fields such as `status`."""
    return {"labels": dict(labels), "annotations": dict(annotations), **extra}
