"""The policy engine: order, first-match-wins, decisions, and the index against a linear scan."""

from __future__ import annotations

import random
from typing import Any

import pytest

from core.policy.engine import PolicySet, dedup_key, naive_matching
from core.policy.matchers import parse_matcher
from core.policy.spec import PolicySpec, parse_policy
from core.policy.testing import AlertUnderTest, describe_test, labels_from_pairs

CRASHLOOP = {"alertname": "KubePodCrashLooping", "namespace": "prod", "pod": "web-1"}


def spec(name: str, *matchers: str, **fields: Any) -> PolicySpec:
    data: dict[str, Any] = {
        "name": name,
        "matchers": list(matchers) or ['alertname="KubePodCrashLooping"'],
        "action": "k8s.restart_pod",
        "params": {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
    }
    data.update(fields)
    return parse_policy(data)


def names(policy_set: PolicySet, labels: dict[str, str]) -> list[str]:
    return [p.spec.name for p in policy_set.matching(labels)]


# --- order, first match wins, continue, disabled ------------------------------------------


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        # lower priority first, whatever the input order
        ([spec("b", priority=20), spec("a", priority=10)], ["a"]),
        ([spec("a", priority=20), spec("b", priority=10)], ["b"]),
        # ties broken by name
        ([spec("zz", priority=5), spec("aa", priority=5)], ["aa"]),
        # the first match wins even if a later one matches more precisely
        (
            [
                spec("generic", 'namespace="prod"', priority=1),
                spec("exact", 'alertname="KubePodCrashLooping"', 'pod="web-1"', priority=2),
            ],
            ["generic"],
        ),
        # a policy that does not match does not stop the search
        (
            [
                spec("other", 'alertname="NodeDown"', priority=1),
                spec("mine", priority=2),
                spec("later", priority=3),
            ],
            ["mine"],
        ),
        # continue lets later ones match too, until one without continue
        (
            [
                spec("c1", priority=1, **{"continue": True}),
                spec("c2", priority=2, **{"continue": True}),
                spec("stop", priority=3),
                spec("never", priority=4),
            ],
            ["c1", "c2", "stop"],
        ),
        (
            [
                spec("c1", priority=1, **{"continue": True}),
                spec("miss", 'alertname="NodeDown"', priority=2),
                spec("last", priority=9, **{"continue": True}),
            ],
            ["c1", "last"],
        ),
        # continue on a non-matching policy changes nothing
        (
            [
                spec("miss", 'alertname="NodeDown"', priority=1, **{"continue": True}),
                spec("hit", priority=2),
                spec("after", priority=3),
            ],
            ["hit"],
        ),
        # disabled policies are ignored, including for first-match-wins
        (
            [spec("off", priority=1, enabled=False), spec("on", priority=2)],
            ["on"],
        ),
        ([spec("off", enabled=False)], []),
        # every matcher must hold
        ([spec("both", 'alertname="KubePodCrashLooping"', 'namespace="dev"')], []),
        ([], []),
    ],
)
def test_order_and_first_match_wins(policies: list[PolicySpec], expected: list[str]) -> None:
    policy_set = PolicySet(policies)
    assert names(policy_set, CRASHLOOP) == expected
    assert [s.name for s in naive_matching(policies, CRASHLOOP)] == expected
    assert [d.policy.name for d in policy_set.evaluate(CRASHLOOP)] == expected


def test_disabled_policies_are_not_compiled() -> None:
    policy_set = PolicySet([spec("off", enabled=False), spec("on")])
    assert len(policy_set) == 1
    assert [p.spec.name for p in policy_set.policies] == ["on"]


def test_policies_are_compiled_in_order() -> None:
    policy_set = PolicySet([spec("c", priority=2), spec("b", priority=1), spec("a", priority=2)])
    assert [(p.order, p.spec.name) for p in policy_set.policies] == [(0, "b"), (1, "a"), (2, "c")]


# --- decisions ------------------------------------------------------------------------------


def test_decision_params_and_target() -> None:
    [decision] = PolicySet([spec("restart")]).evaluate(CRASHLOOP, {"summary": "x"})
    assert decision.error is None
    assert decision.params_dict == {"namespace": "prod", "pod": "web-1"}
    assert decision.target == "prod/web-1"
    assert decision.action.name == "k8s.restart_pod"
    assert decision.policy.name == "restart"


@pytest.mark.parametrize(
    ("action", "params", "labels", "annotations", "expected", "target"),
    [
        (
            "k8s.scale",
            {"namespace": "{{ labels.namespace }}", "deployment": "web", "replicas": "{{ 1 + 2 }}"},
            {"namespace": "prod"},
            {},
            {"namespace": "prod", "deployment": "web", "replicas": 3},
            "prod/web",
        ),
        (
            "k8s.scale",
            {"namespace": "prod", "deployment": "web", "replicas": "{{ labels.want }}"},
            {"want": " 7 "},
            {},
            {"namespace": "prod", "deployment": "web", "replicas": 7},
            "prod/web",
        ),
        (
            "vsphere.reset_vm",
            {"vm": "{{ labels.instance.split(':')[0] }}"},
            {"instance": "db-01:9100"},
            {},
            {"vm": "db-01"},
            "vm/db-01",
        ),
        (
            "k8s.pod_logs",
            {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
            {"namespace": "prod", "pod": "web-1"},
            {},
            {"namespace": "prod", "pod": "web-1", "tail": 100},
            "prod/web-1",
        ),
        (
            "prometheus.query",
            {"query": "{{ annotations.query }}"},
            {},
            {"query": 'up{job="node"} == 0'},
            {"query": 'up{job="node"} == 0'},
            'up{job="node"} == 0',
        ),
    ],
)
def test_decisions_render_and_validate(
    action: str,
    params: dict[str, Any],
    labels: dict[str, str],
    annotations: dict[str, str],
    expected: dict[str, Any],
    target: str,
) -> None:
    policy_set = PolicySet([spec("p", 'alertname="A"', action=action, params=params)])
    [decision] = policy_set.evaluate({"alertname": "A", **labels}, annotations)
    assert decision.error is None
    assert decision.params_dict == expected
    assert decision.target == target


def test_dedup_key() -> None:
    policy_set = PolicySet(
        [spec("first", **{"continue": True}, priority=1), spec("second", priority=2)]
    )
    first, second = policy_set.evaluate(CRASHLOOP)
    # same policy, same rendered params → same key, whatever else the alert carries
    [again, _] = policy_set.evaluate({**CRASHLOOP, "severity": "critical"}, {"summary": "y"})
    assert again.dedup_key == first.dedup_key
    # different policy, same params → different key
    assert first.params_dict == second.params_dict
    assert first.dedup_key != second.dedup_key
    # different params → different key
    [other, _] = policy_set.evaluate({**CRASHLOOP, "pod": "web-2"})
    assert other.dedup_key != first.dedup_key
    # it is the documented function of policy, action and params
    assert first.dedup_key == dedup_key("first", "k8s.restart_pod", first.params_dict)
    assert dedup_key("p", "a", {"x": 1, "y": 2}) == dedup_key("p", "a", {"y": 2, "x": 1})
    assert dedup_key("p", "a", {"x": 1}) != dedup_key("p", "b", {"x": 1})
    assert len(first.dedup_key) == 64


@pytest.mark.parametrize(
    ("labels", "error_parts"),
    [
        ({"alertname": "KubePodCrashLooping", "namespace": "prod"}, ["params.pod", "'pod'"]),
        ({"alertname": "KubePodCrashLooping", "pod": "web-1"}, ["params.namespace", "'namespace'"]),
        ({**CRASHLOOP, "pod": "Bad_Name"}, ["pod:", "pattern"]),
        ({**CRASHLOOP, "pod": "web-1; rm -rf /"}, ["pod:", "pattern"]),
        ({**CRASHLOOP, "namespace": "kube-system --all"}, ["namespace:", "pattern"]),
        ({**CRASHLOOP, "namespace": "Prod"}, ["namespace:", "pattern"]),
        ({**CRASHLOOP, "namespace": ""}, ["namespace:"]),
        ({**CRASHLOOP, "pod": "x" * 300}, ["pod:", "at most 253"]),
    ],
)
def test_render_errors_become_decision_errors(
    labels: dict[str, str], error_parts: list[str]
) -> None:
    [decision] = PolicySet([spec("restart")]).evaluate(labels)
    assert decision.params is None
    assert decision.error is not None
    for part in error_parts:
        assert part in decision.error
    assert decision.target == ""
    assert decision.params_dict == {}


def test_one_bad_decision_does_not_hide_the_next() -> None:
    policy_set = PolicySet(
        [
            spec(
                "needs-container",
                priority=1,
                params={"namespace": "prod", "pod": "{{ labels.c }}"},
                **{"continue": True},
            ),
            spec("restart", priority=2),
        ]
    )
    bad, good = policy_set.evaluate(CRASHLOOP)
    assert bad.error == "params.pod: the alert has no 'c'"
    assert good.error is None and good.target == "prod/web-1"


SCALE_PARAMS = {"namespace": "prod", "deployment": "web", "replicas": "{{ labels.replicas }}"}


@pytest.mark.parametrize(
    ("replicas", "allow", "error", "expected"),
    [
        ("3", False, None, 3),
        ("0", False, "scaling to 0 is not allowed", None),
        ("00", False, "scaling to 0 is not allowed", None),
        ("0", True, None, 0),
        ("-1", True, "replicas:", None),
        ("100000", False, "replicas:", None),
        ("three", False, "replicas:", None),
    ],
)
def test_scaling_to_zero_is_refused_unless_allowed(
    replicas: str, allow: bool, error: str | None, expected: int | None
) -> None:
    policy = spec(
        "scale", 'alertname="A"', action="k8s.scale", params=SCALE_PARAMS, allow_scale_to_zero=allow
    )
    [decision] = PolicySet([policy]).evaluate({"alertname": "A", "replicas": replicas})
    if error is None:
        assert decision.error is None
        assert decision.params_dict["replicas"] == expected
    else:
        assert decision.error is not None and error in decision.error
        assert decision.params is None


def test_templates_see_alert_fields() -> None:
    policy = spec(
        "q",
        'alertname="A"',
        action="prometheus.query",
        params={"query": "{{ status }}:{{ fingerprint }}"},
    )
    [decision] = PolicySet([policy]).evaluate({"alertname": "A"}, status="firing", fingerprint="f1")
    assert decision.params_dict == {"query": "firing:f1"}


def test_no_match_renders_nothing() -> None:
    assert PolicySet([spec("restart")]).evaluate({"alertname": "Other"}) == []


# --- the index gives the same answers as a linear scan -------------------------------------

ALERTNAMES = [
    "KubePodCrashLooping",
    "KubePodNotReady",
    "NodeDown",
    "NodeXDown",
    "Node.Down",
    "DiskFull",
    "DiskFull2",
    "HighLatency",
    "Watchdog",
    "A",
    "AB",
    "B-c",
    "x y",
    "",
]
SEVERITIES = ["critical", "warning", "info", "", "Critical"]
NAMESPACES = ["prod", "dev", "kube-system", "", "prod-eu"]


def _alertname_matchers(rng: random.Random) -> list[str]:
    name = rng.choice(ALERTNAMES[:-1])
    other = rng.choice(ALERTNAMES[:-1])
    kind = rng.choice(
        [
            "eq",
            "eq",
            "eq",
            "alt",
            "alt-dup",
            "regex",
            "dot",
            "ne",
            "nre",
            "none",
            "none-eq-other",
            "eq-empty",
        ]
    )
    if kind == "eq":
        return [f'alertname="{name}"']
    if kind == "eq-empty":
        return ['alertname=""']
    if kind == "alt":
        return [f'alertname=~"{name}|{other}"']
    if kind == "alt-dup":
        return [f'alertname=~"{name}|{name}"']
    if kind == "regex":
        return [f'alertname=~"{name[:2]}.*"']
    if kind == "dot":
        return ['alertname=~"Node.Down"']
    if kind == "ne":
        return [f'alertname!="{name}"']
    if kind == "nre":
        return [f'alertname!~"{name[:1]}.*"']
    if kind == "none-eq-other":
        return [f'namespace="{rng.choice(NAMESPACES)}"']
    return []


def _other_matchers(rng: random.Random) -> list[str]:
    options = [
        f'severity="{rng.choice(SEVERITIES)}"',
        'severity=~"critical|warning"',
        'severity=~"(?i)critical"',
        'severity!="info"',
        f'namespace=~"{rng.choice(NAMESPACES)}|prod"',
        'namespace!~"kube-.*"',
        'namespace=~".*"',
        'team=""',
        'team!=""',
        'team=~"db|"',
    ]
    return rng.sample(options, rng.randint(0, 2))


def random_policies(rng: random.Random, count: int) -> list[PolicySpec]:
    policies = []
    for i in range(count):
        matchers = _alertname_matchers(rng) + _other_matchers(rng)
        if not matchers:
            matchers = ['namespace!="nowhere"']
        policies.append(
            PolicySpec.model_validate(
                {
                    "name": f"p{i:04d}",
                    "matchers": matchers,
                    "action": "policies.list",
                    "priority": rng.randint(0, 20),
                    "continue": rng.random() < 0.35,
                    "enabled": rng.random() > 0.05,
                }
            )
        )
    return policies


def random_alert(rng: random.Random) -> dict[str, str]:
    labels: dict[str, str] = {}
    if rng.random() < 0.85:
        labels["alertname"] = rng.choice(ALERTNAMES)
    for key, pool in (("severity", SEVERITIES), ("namespace", NAMESPACES), ("team", ["db", "web"])):
        if rng.random() < 0.6:
            labels[key] = rng.choice(pool)
    return labels


def linear_scan(policies: list[PolicySpec], labels: dict[str, str]) -> list[PolicySpec]:
    """An independent reference: sort, test every matcher, honour continue."""
    ordered = sorted((p for p in policies if p.enabled), key=lambda p: (p.priority, p.name))
    matched = []
    for policy in ordered:
        if all(parse_matcher(m).matches(labels) for m in policy.matchers):
            matched.append(policy)
            if not policy.continue_matching:
                break
    return matched


@pytest.mark.parametrize("seed", range(6))
def test_index_matches_linear_scan(seed: int) -> None:
    rng = random.Random(seed)
    policies = random_policies(rng, rng.choice([5, 40, 150]))
    policy_set = PolicySet(policies)
    alerts = [random_alert(rng) for _ in range(400)] + [{}, {"alertname": ""}]
    matched_any = 0
    for labels in alerts:
        indexed = [p.spec for p in policy_set.matching(labels)]
        assert indexed == linear_scan(policies, labels), labels
        matched_any += bool(indexed)
    # naive_matching compiles the whole set per call, so it is spot-checked
    for labels in alerts[::20]:
        assert [p.spec for p in policy_set.matching(labels)] == naive_matching(policies, labels)
    assert matched_any > len(alerts) // 10, "the generator should produce matching alerts"


def test_candidates_are_ascending_and_unique() -> None:
    rng = random.Random(99)
    policy_set = PolicySet(random_policies(rng, 200))
    for _ in range(200):
        found = policy_set.candidates(random_alert(rng))
        assert found == sorted(set(found))


def test_index_handles_duplicate_alternatives_with_continue() -> None:
    policies = [spec("dup", 'alertname=~"A|A"', **{"continue": True})]
    assert names(PolicySet(policies), {"alertname": "A"}) == ["dup"]


def test_regex_with_a_dot_is_not_treated_as_a_literal() -> None:
    policy_set = PolicySet([spec("dot", 'alertname=~"Node.Down"', 'namespace="prod"')])
    assert names(policy_set, {"alertname": "NodeXDown", "namespace": "prod"}) == ["dot"]


# --- policy test: the explained dry run ---------------------------------------------------

DESIGN_POLICY = parse_policy(
    {
        "name": "restart-crashlooping-pod",
        "priority": 10,
        "matchers": ['alertname="KubePodCrashLooping"', 'severity=~"critical|warning"'],
        "action": "k8s.restart_pod",
        "params": {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
        "approvers": ["U012ABCDEF", "S0PLATFORM"],
        "cooldown_seconds": 600,
        "max_runs_per_hour": 5,
    }
)
AUTO_POLICY = parse_policy(
    {
        "name": "logs-on-oom",
        "matchers": ['alertname="KubeOOM"'],
        "action": "k8s.pod_logs",
        "params": {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}", "tail": 20},
        "approval": "auto",
        "dry_run": True,
    }
)


def report(labels: dict[str, str], status: str = "firing") -> Any:
    return describe_test(
        PolicySet([DESIGN_POLICY, AUTO_POLICY]), AlertUnderTest(labels, {}, status, "fp")
    )


def test_describe_a_match() -> None:
    result = report({**CRASHLOOP, "severity": "critical"})
    assert result.as_text().splitlines() == [
        "alert: alertname=KubePodCrashLooping namespace=prod pod=web-1 severity=critical",
        "  matches policy restart-crashlooping-pod (priority 10)",
        '    would propose: k8s.restart_pod {"namespace": "prod", "pod": "web-1"}',
        "    target: prod/web-1  risk: write",
        "    approval: a person's approval; approvers: U012ABCDEF, S0PLATFORM; "
        "guard rails: cooldown 600s, max 5/hour",
    ]
    assert result.as_dict() == {
        "alert": {"labels": {**CRASHLOOP, "severity": "critical"}, "status": "firing"},
        "matches": [
            {
                "policy": "restart-crashlooping-pod",
                "action": "k8s.restart_pod",
                "risk": "write",
                "params": {"namespace": "prod", "pod": "web-1"},
                "target": "prod/web-1",
                "approval": "required",
                "dry_run": False,
                "error": None,
            }
        ],
    }


def test_describe_an_auto_shadow_policy() -> None:
    text = report({"alertname": "KubeOOM", "namespace": "dev", "pod": "api-0"}).as_text()
    assert (
        '    would propose: k8s.pod_logs {"namespace": "dev", "pod": "api-0", "tail": 20}' in text
    )
    assert "    target: dev/api-0  risk: read" in text
    assert "    approval: automatic; shadow mode (dry run)" in text


def test_describe_no_match() -> None:
    result = report({**CRASHLOOP, "severity": "info"})
    assert result.as_text().splitlines() == [
        "alert: alertname=KubePodCrashLooping namespace=prod pod=web-1 severity=info",
        "  no policy matches: nothing would be proposed",
    ]
    assert result.as_dict()["matches"] == []


def test_describe_an_error() -> None:
    result = report({"alertname": "KubePodCrashLooping", "severity": "warning", "pod": "x"})
    lines = result.as_text().splitlines()
    assert lines[1:] == [
        "  matches policy restart-crashlooping-pod (priority 10)",
        "    would record an error, no proposal: params.namespace: the alert has no 'namespace'",
    ]
    [match] = result.as_dict()["matches"]
    assert match["params"] is None
    assert match["target"] == ""
    assert match["error"] == "params.namespace: the alert has no 'namespace'"


def test_describe_a_resolved_alert() -> None:
    result = report({**CRASHLOOP, "severity": "critical"}, status="resolved")
    assert result.decisions == []
    assert "resolved: would supersede the pending proposals it opened" in result.as_text()
    assert result.as_dict()["alert"]["status"] == "resolved"


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["alertname=A", "pod=web-1"], {"alertname": "A", "pod": "web-1"}),
        (["expr=a=b"], {"expr": "a=b"}),
        (["empty="], {"empty": ""}),
        ([], {}),
    ],
)
def test_labels_from_pairs(pairs: list[str], expected: dict[str, str]) -> None:
    assert labels_from_pairs(pairs) == expected


@pytest.mark.parametrize("pair", ["novalue", "=x", "bad-name=x", "1a=x"])
def test_labels_from_pairs_refuses(pair: str) -> None:
    with pytest.raises(ValueError, match="expected name=value"):
        labels_from_pairs([pair])


def test_decisions_are_remembered_per_value_of_what_the_params_read() -> None:
    restart = spec(
        "restart",
        'alertname="Crash"',
        action="k8s.restart_pod",
        params={"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
    )
    policies = PolicySet([restart])
    first = policies.evaluate({"alertname": "Crash", "namespace": "prod", "pod": "a", "x": "1"})
    again = policies.evaluate({"alertname": "Crash", "namespace": "prod", "pod": "a", "x": "2"})
    other = policies.evaluate({"alertname": "Crash", "namespace": "prod", "pod": "b"})
    missing = policies.evaluate({"alertname": "Crash", "namespace": "prod"})
    assert again[0] is first[0]  # the same values: the same decision, not rendered again
    assert other[0].params_dict == {"namespace": "prod", "pod": "b"}
    assert missing[0].error is not None and "pod" in missing[0].error
    assert policies.evaluate({"alertname": "Crash", "namespace": "prod"})[0] is missing[0]


def test_a_real_template_is_rendered_every_time() -> None:
    upper = spec(
        "upper",
        'alertname="Crash"',
        action="k8s.restart_pod",
        params={"namespace": "prod", "pod": "{{ labels.pod | lower }}"},
    )
    policies = PolicySet([upper])
    first = policies.evaluate({"alertname": "Crash", "pod": "A"})
    again = policies.evaluate({"alertname": "Crash", "pod": "A"})
    assert first[0] is not again[0] and first[0].params_dict == again[0].params_dict
