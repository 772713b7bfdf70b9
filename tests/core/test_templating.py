"""Param templates: rendering, strictness about missing data, and the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from core.policy.templating import (
    TemplateError,
    alert_context,
    compile_param,
    is_template,
    render_param,
)

LABELS = {
    "alertname": "KubePodCrashLooping",
    "namespace": "prod",
    "pod": "web-7d9f8-abcde",
    "severity": "critical",
    "instance": "10.0.0.7:9100",
}
ANNOTATIONS = {"summary": "Pod prod/web is crashlooping", "runbook_url": "https://r/x"}


def render(template: Any, **extra: Any) -> Any:
    return render_param(compile_param(template), alert_context(LABELS, ANNOTATIONS, **extra))


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ labels.pod }}", "web-7d9f8-abcde"),
        ("{{ labels['namespace'] }}", "prod"),
        ("{{ annotations.summary }}", "Pod prod/web is crashlooping"),
        ("{{ labels.namespace }}/{{ labels.pod }}", "prod/web-7d9f8-abcde"),
        ("  {{ labels.pod }}  ", "web-7d9f8-abcde"),
        ("{{ labels.pod }}\n", "web-7d9f8-abcde"),
        ("{{ labels.severity | upper }}", "CRITICAL"),
        ("{{ labels.alertname | lower }}", "kubepodcrashlooping"),
        ("{{ labels.instance.split(':')[0] }}", "10.0.0.7"),
        ("{{ labels.instance | replace(':9100', '') }}", "10.0.0.7"),
        ("{{ labels.pod | truncate(6, True, '') }}", "web-7d"),
        ("{{ labels.missing | default('fallback') }}", "fallback"),
        ("{{ labels.get('missing', 'dflt') }}", "dflt"),
        ("{{ status }}", "firing"),
        ("{% if labels.severity == 'critical' %}3{% else %}1{% endif %}", "3"),
        ("{{ labels.namespace ~ '-' ~ labels.severity }}", "prod-critical"),
        ("{{ 2 + 3 }}", "5"),
    ],
)
def test_renders_labels_annotations_and_filters(template: str, expected: str) -> None:
    assert render(template, status="firing") == expected


@pytest.mark.parametrize(
    "literal",
    [3, 0, -1, 2.5, True, False, None, "prod", "", "a { b } c", "{ not a template }", ["x"]],
)
def test_literals_pass_through_untouched(literal: Any) -> None:
    compiled = compile_param(literal)
    assert compiled.template is None
    assert compiled.variables == frozenset()
    rendered = render_param(compiled, alert_context({}, {}))
    assert rendered == literal
    assert type(rendered) is type(literal)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ x }}", True),
        ("{% if x %}y{% endif %}", True),
        ("a {{ b }} c", True),
        ("plain", False),
        ("{ x }", False),
        (3, False),
        (None, False),
    ],
)
def test_is_template(value: Any, expected: bool) -> None:
    assert is_template(value) is expected


@pytest.mark.parametrize(
    ("template", "variables"),
    [
        ("{{ labels.pod }}", {"labels"}),
        ("{{ labels.pod }} {{ annotations.summary }}", {"labels", "annotations"}),
        ("{{ 1 + 2 }}", set()),
        ("{% set x = 1 %}{{ x }}", set()),
    ],
)
def test_compile_records_the_variables_read(template: str, variables: set[str]) -> None:
    assert compile_param(template).variables == frozenset(variables)


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{{ labels.container }}", "container"),
        ("{{ labels['container'] }}", "container"),
        ("{{ annotations.description }}", "description"),
        ("{{ labels.namespace }}/{{ labels.deployment }}", "deployment"),
        ("{{ labels.container | lower }}", "container"),
        ("{{ labels.container ~ '-x' }}", "container"),
        ("{{ config }}", "config"),
        ("{{ request }}", "request"),
        ("{{ alert.labels.pod }}", "alert"),
    ],
)
def test_missing_data_is_an_error_naming_it_never_empty(template: str, named: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template)
    assert f"'{named}'" in str(caught.value)


def test_missing_label_message_is_readable() -> None:
    with pytest.raises(TemplateError, match=r"^the alert has no 'container'$"):
        render("{{ labels.container }}")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__ }}",
        "{{ cycler.__init__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ labels.update({}) }}",
        "{{ labels.update({'pod': 'x'}) or labels.pod }}",
        "{{ labels.pop('pod') }}",
        "{{ labels.clear() }}",
        "{{ labels.__setitem__('pod', 'x') }}",
        "{{ self.__dict__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ ().__class__.__bases__[0].__subclasses__() }}",
        "{{ labels.__class__.__base__.__subclasses__() }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ range.__globals__ }}",
        "{{ labels.pod.__class__ }}",
        "{{ '{0.__class__}'.format(labels) }}",
        "{{ labels.pod|attr('__class__') }}",
        "{% set x = labels.__class__ %}{{ x }}",
        "{{ config }}",
        "{{ config.items() }}",
        "{{ request }}",
        "{{ request.environ }}",
        "{{ get_flashed_messages.__globals__ }}",
        "{{ url_for.__globals__ }}",
    ],
)
def test_sandbox_escapes_fail(template: str) -> None:
    before = dict(LABELS)
    try:
        result = render(template)
    except TemplateError as exc:
        message = str(exc)
        assert "<class" not in message and " at 0x" not in message, message
        assert "unsafe" in message or "undefined" in message, message
    else:
        pytest.fail(f"{template!r} rendered {result!r}")
    assert before == LABELS, "a template must not mutate the alert"


def test_sandbox_refusal_says_so() -> None:
    with pytest.raises(TemplateError, match="refused by the template sandbox"):
        render("{{ ''.__class__ }}")


def test_context_labels_are_copies() -> None:
    labels = {"pod": "a"}
    context = alert_context(labels, {})
    context["labels"]["pod"] = "b"
    assert labels == {"pod": "a"}


@pytest.mark.parametrize(
    "template",
    [
        "{{ labels.pod ",
        "{{ labels.pod }",
        "{% if labels.pod %}x",
        "{{ labels..pod }}",
        "{{ }}",
        "{% nosuchtag %}",
        "{{ labels.pod | }}",
        "{{ labels.pod | nosuchfilter }}",
    ],
)
def test_syntax_errors_fail_at_compile(template: str) -> None:
    with pytest.raises(TemplateError, match="template syntax error"):
        compile_param(template)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 1 / 0 }}",
        "{{ labels.pod + 1 }}",
    ],
)
def test_runtime_failures_become_template_errors(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template)


def test_compiled_templates_are_shared() -> None:
    first = compile_param("{{ labels.namespace }}-x")
    assert compile_param("{{ labels.namespace }}-x") is first
    assert render_param(first, alert_context({"namespace": "a"}, {})) == "a-x"
    assert render_param(first, alert_context({"namespace": "b"}, {})) == "b-x"
