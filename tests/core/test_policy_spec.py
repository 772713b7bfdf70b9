"""The policy model: DESIGN §9 YAML accepted, and every refusal names policy and field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from core.policy.spec import PolicyError, PolicySpec, parse_policy, parse_policy_document
from core.policy.store import export_document, load_document

DESIGN_EXAMPLE = """
policies:
  - name: restart-crashlooping-pod
    description: Delete a crashlooping pod so its controller recreates it
    priority: 10                      # lower runs first
    matchers:                         # Alertmanager matcher syntax, all must hold
      - alertname="KubePodCrashLooping"
      - severity=~"critical|warning"
    action: k8s.restart_pod
    params:                           # sandboxed Jinja2 over the alert
      namespace: "{{ labels.namespace }}"
      pod: "{{ labels.pod }}"
    approval: required                # or auto
    approvers: [U012ABCDEF, S0PLATFORM]
    channel: C0OPSALERTS              # else INFRAAI_CHANNEL
    cooldown_seconds: 600
    max_runs_per_hour: 5
    dry_run: false                    # true: shadow mode for this policy
    continue: false
"""

BASE: dict[str, Any] = {
    "name": "scale-web",
    "matchers": ['alertname="HighLatency"'],
    "action": "k8s.scale",
    "params": {"namespace": "{{ labels.namespace }}", "deployment": "web", "replicas": 3},
}


def policy(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def with_params(**params: Any) -> dict[str, Any]:
    merged = {**BASE["params"], **params}
    return policy(params={k: v for k, v in merged.items() if v is not _DROP})


_DROP = object()


def test_design_example_is_accepted() -> None:
    [spec] = load_document(DESIGN_EXAMPLE)
    assert spec.name == "restart-crashlooping-pod"
    assert spec.priority == 10
    assert spec.matchers == ('alertname="KubePodCrashLooping"', 'severity=~"critical|warning"')
    assert spec.action == "k8s.restart_pod"
    assert spec.params == {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"}
    assert spec.approval == "required"
    assert spec.approvers == ("U012ABCDEF", "S0PLATFORM")
    assert spec.channel == "C0OPSALERTS"
    assert (spec.cooldown_seconds, spec.max_runs_per_hour) == (600, 5)
    assert spec.dry_run is False
    assert spec.continue_matching is False
    assert spec.enabled is True
    # the three entry points agree
    document = yaml.safe_load(DESIGN_EXAMPLE)
    assert parse_policy_document(document) == [spec]
    assert parse_policy(document["policies"][0]) == spec


def test_defaults() -> None:
    spec = parse_policy({"name": "p", "matchers": ['alertname="X"'], "action": "policies.list"})
    assert spec.priority == 100
    assert spec.enabled is True
    assert spec.approval == "required"
    assert spec.approvers == ()
    assert spec.channel is None
    assert spec.cooldown_seconds == 0
    assert spec.max_runs_per_hour is None
    assert spec.continue_matching is False
    assert spec.allow_scale_to_zero is False
    assert spec.params == {}


@pytest.mark.parametrize(
    "data",
    [
        policy(),
        policy(**{"continue": True}),
        policy(params={"namespace": "prod", "deployment": "web", "replicas": "{{ 2 + 1 }}"}),
        policy(
            params={"namespace": "prod", "deployment": "web", "replicas": 0},
            allow_scale_to_zero=True,
        ),
        # alert-dependent values are checked per alert, not on write
        with_params(replicas="{{ labels.replicas }}"),
        with_params(deployment="{{ labels.deployment | lower }}"),
        policy(action="k8s.restart_pod", params={"namespace": "prod", "pod": "{{ labels.pod }}"}),
        policy(action="k8s.pod_logs", params={"namespace": "prod", "pod": "x", "tail": 50}),
        policy(action="vsphere.reset_vm", params={"vm": "{{ labels.vm }}"}),
        policy(action="policies.list", params={}),
        policy(approvers=["U012ABCDEF", "W0ENTERPRISE", "S0PLATFORM"]),
        policy(name="a.b_c-1"),
    ],
)
def test_accepts_valid_policies(data: dict[str, Any]) -> None:
    spec = parse_policy(data)
    assert spec.name == data["name"]


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (policy(action="k8s.delete_namespace"), "action", "unknown action 'k8s.delete_namespace'"),
        (policy(action="k8s_scale"), "action", "unknown action"),
        (policy(matchers=['alertname=~"("']), "matchers", "bad regular expression"),
        (policy(matchers=['alertname="X"', 'job!~"[a-"']), "matchers", "bad regular expression"),
        (policy(matchers=[r'instance=~"(a)\\1"']), "matchers", "RE2"),
        (policy(matchers=["alertname"]), "matchers", "expected one of"),
        (policy(matchers=[]), "matchers", "at least 1"),
        (policy(matchers=_DROP), "matchers", "Field required"),
        (policy(action=_DROP), "action", "Field required"),
        (policy(name="Bad Name"), "name", "lowercase"),
        (policy(name=""), "name", "lowercase"),
        # params against the action's schema
        (with_params(replicas="three"), "params.replicas", "valid integer"),
        (with_params(replicas=[3]), "params.replicas", "valid integer"),
        (with_params(replicas=100_000), "params.replicas", "less than or equal"),
        (with_params(replicas=-1), "params.replicas", "greater than or equal"),
        (with_params(deployment=_DROP), "params.deployment", "Field required"),
        (with_params(force=True), "params.force", "Extra inputs are not permitted"),
        (with_params(namespace="Prod"), "params.namespace", "should match pattern"),
        (with_params(namespace="kube-system --all"), "params.namespace", "should match pattern"),
        (with_params(deployment="Web_1"), "params.deployment", "should match pattern"),
        # a template that reads no alert data is rendered and checked like a literal
        (with_params(namespace="{{ 'PROD' }}"), "params.namespace", "should match pattern"),
        (
            with_params(deployment="{{ labels.deployment "),
            "params.deployment",
            "template syntax error",
        ),
        (with_params(deployment="{% if %}"), "params.deployment", "template syntax error"),
        (with_params(deployment="{{ 1/0 }}"), "params.deployment", "ZeroDivisionError"),
        # scaling to zero needs an explicit opt-in
        (with_params(replicas=0), "params.replicas", "allow_scale_to_zero"),
        (with_params(replicas="0"), "params.replicas", "allow_scale_to_zero"),
        (with_params(replicas=" 0 "), "params.replicas", "allow_scale_to_zero"),
        (with_params(replicas="00"), "params.replicas", "allow_scale_to_zero"),
        (with_params(replicas=0.0), "params.replicas", "allow_scale_to_zero"),
        (with_params(replicas=False), "params.replicas", "allow_scale_to_zero"),
        (with_params(replicas="{{ 0 }}"), "params.replicas", "allow_scale_to_zero"),
        # the rest of the model
        (policy(colour="blue"), "colour", "Extra inputs are not permitted"),
        (
            policy(continue_matching=True, **{"continue": False}),
            "continue_matching",
            "Extra inputs",
        ),
        (policy(approvers=["bob"]), "approvers", "'bob' is not a Slack user"),
        (policy(approvers=["u012abcdef"]), "approvers", "not a Slack user"),
        (policy(approvers=["C0CHANNEL"]), "approvers", "not a Slack user"),
        (policy(approval="sometimes"), "approval", "'required' or 'auto'"),
        (policy(priority=-1), "priority", "greater than or equal to 0"),
        (policy(priority="high"), "priority", "valid integer"),
        (policy(cooldown_seconds=-5), "cooldown_seconds", "greater than or equal to 0"),
        (policy(max_runs_per_hour=0), "max_runs_per_hour", "greater than or equal to 1"),
        (policy(matchers='alertname="X"'), "matchers", "valid tuple"),
        (policy(params=["namespace"]), "params", "valid dictionary"),
    ],
)
def test_refusals_name_policy_and_field(data: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    error = caught.value
    assert error.policy == data["name"]
    assert error.field == field
    assert reason in error.reason
    assert str(error).startswith(f"policy {data['name']!r}: {field}: ")


def test_a_policy_that_is_not_a_mapping_is_named_by_position() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_document({"policies": [BASE, "restart everything"]})
    assert caught.value.policy == "#2"
    assert caught.value.field == "policy"


def test_a_policy_without_a_name_is_named_by_position() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_document({"policies": [BASE, policy(name=_DROP)]})
    assert (caught.value.policy, caught.value.field) == ("#2", "name")


@pytest.mark.parametrize(
    ("text", "policy_name", "field", "reason"),
    [
        ("policies: [", "-", "yaml", "not valid YAML at line"),
        ("policies:\n  - name: a\n\tbad: tab", "-", "yaml", "not valid YAML"),
        ("", "-", "policies", "top-level `policies:` list"),
        ("- name: a", "-", "policies", "top-level `policies:` list"),
        ("policies: {name: a}", "-", "policies", "top-level `policies:` list"),
        ("policies: restart-all", "-", "policies", "top-level `policies:` list"),
        ("policy: []", "-", "policies", "top-level `policies:` list"),
        (
            yaml.safe_dump({"policies": [BASE, policy(priority=5)]}),
            "scale-web",
            "name",
            "appears twice",
        ),
        (
            yaml.safe_dump({"policies": [BASE, policy(name="other", action="nope")]}),
            "other",
            "action",
            "unknown action",
        ),
    ],
)
def test_document_refusals(text: str, policy_name: str, field: str, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_document(text)
    assert (caught.value.policy, caught.value.field) == (policy_name, field)
    assert reason in caught.value.reason


def test_empty_policy_list_is_accepted() -> None:
    assert load_document("policies: []") == []


@pytest.mark.parametrize(
    "data",
    [
        policy(),
        policy(**{"continue": True}, priority=3, enabled=False, dry_run=True),
        policy(
            description="desc",
            approval="auto",
            approvers=["U012ABCDEF"],
            channel="C0OPS",
            cooldown_seconds=60,
            max_runs_per_hour=2,
            params={"namespace": "prod", "deployment": "web", "replicas": 0},
            allow_scale_to_zero=True,
        ),
        yaml.safe_load(DESIGN_EXAMPLE)["policies"][0],
    ],
)
def test_to_yaml_dict_round_trips(data: dict[str, Any]) -> None:
    spec = parse_policy(data)
    exported = spec.to_yaml_dict()
    assert parse_policy(exported) == spec
    assert parse_policy(yaml.safe_load(yaml.safe_dump(exported))) == spec
    assert load_document(export_document([spec])) == [spec]


def test_to_yaml_dict_omits_defaults_and_keeps_field_order() -> None:
    spec = parse_policy(policy())
    assert spec.to_yaml_dict() == {
        "name": "scale-web",
        "matchers": ['alertname="HighLatency"'],
        "action": "k8s.scale",
        "params": {"namespace": "{{ labels.namespace }}", "deployment": "web", "replicas": 3},
    }
    minimal = parse_policy({"name": "p", "matchers": ['a="b"'], "action": "policies.list"})
    assert minimal.to_yaml_dict() == {"name": "p", "matchers": ['a="b"'], "action": "policies.list"}


def test_to_yaml_dict_uses_the_yaml_key_for_continue() -> None:
    exported = parse_policy(policy(**{"continue": True})).to_yaml_dict()
    assert exported["continue"] is True
    assert "continue_matching" not in exported
    assert list(exported) == ["name", "matchers", "action", "params", "continue"]


def test_specs_are_immutable_values() -> None:
    spec = parse_policy(policy())
    with pytest.raises(ValueError):
        spec.priority = 1  # type: ignore[misc]
    assert spec == parse_policy(policy())
    assert spec != parse_policy(policy(priority=1))
    assert isinstance(spec, PolicySpec)


BILLION_LAUGHS = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
policies:
  - name: *i
    matchers: ['alertname="X"']
    action: k8s.restart_pod
    params: {namespace: prod, pod: x}
"""


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    # The error path used to format the `name:` it could not use: 3.75 GB, then MemoryError.
    with pytest.raises(PolicyError) as caught:
        load_document(BILLION_LAUGHS)
    assert caught.value.field == "yaml"
    assert "aliases" in caught.value.reason
    assert len(str(caught.value)) < 300


def test_a_policy_name_that_is_not_text_is_not_echoed() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_document({"policies": [{**BASE, "name": ["x"] * 10_000}]})
    assert caught.value.policy == "#1" and caught.value.field == "name"


def test_anchors_and_merge_keys_within_reason_still_work() -> None:
    text = """
defaults: &defaults
  action: k8s.restart_pod
  params: {namespace: prod, pod: "{{ labels.pod }}"}
policies:
  - <<: *defaults
    name: one
    matchers: ['alertname="A"']
  - <<: *defaults
    name: two
    matchers: ['alertname="B"']
"""
    assert [spec.name for spec in load_document(text)] == ["one", "two"]


def test_yaml_nested_past_the_recursion_limit_is_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        load_document("policies: " + "[" * 50_000 + "]" * 50_000)
    assert caught.value.field == "yaml"
