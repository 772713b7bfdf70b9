"""The action catalogue: the DESIGN §5 contract, lookups, and strict schemas."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.actions.catalogue import BY_TOOL_NAME, CATALOGUE, UnknownAction, get_action

# DESIGN §5, copied: action → (required params, optional params, risk)
DESIGN_ACTIONS: dict[str, tuple[set[str], set[str], str]] = {
    "k8s.restart_pod": ({"namespace", "pod"}, set(), "write"),
    "k8s.rollout_restart": ({"namespace", "deployment"}, set(), "write"),
    "k8s.scale": ({"namespace", "deployment", "replicas"}, set(), "write"),
    "vsphere.reset_vm": ({"vm"}, set(), "write"),
    "vsphere.reboot_guest": ({"vm"}, set(), "write"),
    "vsphere.power_on": ({"vm"}, set(), "write"),
    "vsphere.power_off": ({"vm"}, set(), "write"),
    "k8s.list_pods": ({"namespace"}, {"selector"}, "read"),
    "k8s.pod_logs": ({"namespace", "pod"}, {"tail"}, "read"),
    "k8s.events": ({"namespace"}, set(), "read"),
    "prometheus.query": ({"query"}, set(), "read"),
    "prometheus.query_range": ({"query"}, {"range", "step"}, "read"),
    "grafana.search_dashboards": (set(), {"query"}, "read"),
    "nmap.scan": ({"targets"}, {"ports"}, "read"),
    "assets.list": (set(), {"filter"}, "read"),
    "policies.list": (set(), set(), "read"),
}


def test_catalogue_is_exactly_the_design_table() -> None:
    assert set(CATALOGUE) == set(DESIGN_ACTIONS)


@pytest.mark.parametrize(("name", "contract"), sorted(DESIGN_ACTIONS.items()))
def test_action_contract(name: str, contract: tuple[set[str], set[str], str]) -> None:
    required, optional, risk = contract
    action = CATALOGUE[name]
    assert action.name == name
    assert action.risk == risk
    fields = action.params.model_fields
    assert set(fields) == required | optional
    assert {f for f, info in fields.items() if info.is_required()} == required
    assert action.description.strip(), "the model and people read this"


@pytest.mark.parametrize("name", sorted(DESIGN_ACTIONS))
def test_get_action_by_dotted_and_tool_name(name: str) -> None:
    action = CATALOGUE[name]
    tool_name = name.replace(".", "_")
    assert action.tool_name == tool_name
    assert "." not in action.tool_name
    assert get_action(name) is action
    assert get_action(tool_name) is action
    assert BY_TOOL_NAME[tool_name] is action


@pytest.mark.parametrize(
    "name", ["k8s.delete_namespace", "k8s", "", "K8S.SCALE", "k8s-scale", "k8s.scale ", "shell"]
)
def test_unknown_action(name: str) -> None:
    with pytest.raises(UnknownAction):
        get_action(name)
    assert issubclass(UnknownAction, KeyError)


@pytest.mark.parametrize(
    ("name", "raw", "target"),
    [
        (
            "k8s.restart_pod",
            {"namespace": "prod", "pod": "web-7d9f8-abcde"},
            "prod/web-7d9f8-abcde",
        ),
        ("k8s.restart_pod", {"namespace": " prod ", "pod": "web.v2"}, "prod/web.v2"),
        ("k8s.rollout_restart", {"namespace": "prod", "deployment": "api"}, "prod/api"),
        ("k8s.scale", {"namespace": "prod", "deployment": "api", "replicas": 0}, "prod/api"),
        ("k8s.scale", {"namespace": "prod", "deployment": "api", "replicas": "4"}, "prod/api"),
        ("vsphere.reset_vm", {"vm": "db-01 (old)"}, "vm/db-01 (old)"),
        ("vsphere.power_on", {"vm": "x"}, "vm/x"),
        ("k8s.list_pods", {"namespace": "prod"}, "prod"),
        ("k8s.list_pods", {"namespace": "prod", "selector": "app=web,tier!=db"}, "prod"),
        ("k8s.list_pods", {"namespace": "prod", "selector": "env in (a, b)"}, "prod"),
        ("k8s.pod_logs", {"namespace": "prod", "pod": "p", "tail": 5000}, "prod/p"),
        ("k8s.events", {"namespace": "kube-system"}, "kube-system"),
        ("prometheus.query", {"query": 'up{job="node"} == 0'}, 'up{job="node"} == 0'),
        ("prometheus.query_range", {"query": "up", "range": "30m", "step": "15s"}, "up"),
        ("grafana.search_dashboards", {}, ""),
        ("nmap.scan", {"targets": "127.0.0.1"}, "127.0.0.1"),
        ("nmap.scan", {"targets": "127.0.0.0/30, localhost", "ports": "22,80-90"}, None),
        ("nmap.scan", {"targets": "10.0.0.1-20 ::1 host-a.example"}, None),
        ("assets.list", {"filter": "ssh"}, "ssh"),
        ("policies.list", {}, "policies"),
    ],
)
def test_schemas_accept_valid_params(name: str, raw: dict[str, Any], target: str | None) -> None:
    action = CATALOGUE[name]
    params = action.validate(raw)
    if target is not None:
        assert action.target(params) == target


def test_defaults_are_filled_in() -> None:
    assert CATALOGUE["k8s.pod_logs"].validate({"namespace": "a", "pod": "b"}).model_dump() == {
        "namespace": "a",
        "pod": "b",
        "tail": 100,
    }
    assert CATALOGUE["prometheus.query_range"].validate({"query": "up"}).model_dump() == {
        "query": "up",
        "range": "1h",
        "step": None,
    }


@pytest.mark.parametrize(
    ("name", "raw", "field"),
    [
        # extra fields are refused everywhere
        ("k8s.restart_pod", {"namespace": "prod", "pod": "web", "force": True}, "force"),
        ("k8s.scale", {"namespace": "p", "deployment": "d", "replicas": 1, "max": 9}, "max"),
        ("policies.list", {"all": True}, "all"),
        ("vsphere.power_off", {"vm": "x", "host": "esx1"}, "host"),
        ("nmap.scan", {"targets": "127.0.0.1", "arguments": "-sS"}, "arguments"),
        # missing required fields
        ("k8s.restart_pod", {"namespace": "prod"}, "pod"),
        ("k8s.scale", {"namespace": "p", "deployment": "d"}, "replicas"),
        ("prometheus.query", {}, "query"),
        # names Kubernetes would refuse, or that smuggle arguments
        ("k8s.restart_pod", {"namespace": "kube-system --all", "pod": "x"}, "namespace"),
        ("k8s.restart_pod", {"namespace": "Prod", "pod": "x"}, "namespace"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": "Bad_Name"}, "pod"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": "-web"}, "pod"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": "web;rm -rf /"}, "pod"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": "../../secrets"}, "pod"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": "$(id)"}, "pod"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": ""}, "pod"),
        ("k8s.restart_pod", {"namespace": "a" * 64, "pod": "x"}, "namespace"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": "a" * 254}, "pod"),
        ("k8s.restart_pod", {"namespace": "prod", "pod": "web\nother"}, "pod"),
        ("k8s.rollout_restart", {"namespace": "prod", "deployment": "web*"}, "deployment"),
        ("k8s.rollout_restart", {"namespace": "prod.eu", "deployment": "web"}, "namespace"),
        ("k8s.restart_pod", {"namespace": 7, "pod": "x"}, "namespace"),
        # bounds
        ("k8s.scale", {"namespace": "p", "deployment": "d", "replicas": -1}, "replicas"),
        ("k8s.scale", {"namespace": "p", "deployment": "d", "replicas": 1001}, "replicas"),
        ("k8s.scale", {"namespace": "p", "deployment": "d", "replicas": "all"}, "replicas"),
        ("k8s.scale", {"namespace": "p", "deployment": "d", "replicas": 1.5}, "replicas"),
        ("k8s.pod_logs", {"namespace": "p", "pod": "x", "tail": 0}, "tail"),
        ("k8s.pod_logs", {"namespace": "p", "pod": "x", "tail": 5001}, "tail"),
        ("k8s.list_pods", {"namespace": "p", "selector": "app=web; rm"}, "selector"),
        ("k8s.list_pods", {"namespace": "p", "selector": "a=$(id)"}, "selector"),
        ("vsphere.reset_vm", {"vm": ""}, "vm"),
        ("vsphere.reset_vm", {"vm": "   "}, "vm"),
        ("vsphere.reset_vm", {"vm": "dc/vm/other"}, "vm"),
        ("vsphere.reset_vm", {"vm": "a\x00b"}, "vm"),
        ("vsphere.reset_vm", {"vm": "x" * 81}, "vm"),
        ("prometheus.query", {"query": ""}, "query"),
        ("prometheus.query", {"query": "x" * 4001}, "query"),
        ("prometheus.query_range", {"query": "up", "range": "1h; drop"}, "range"),
        ("prometheus.query_range", {"query": "up", "step": "-5s"}, "step"),
        ("prometheus.query_range", {"query": "up", "range": "1y"}, "range"),
        ("grafana.search_dashboards", {"query": "x" * 201}, "query"),
        ("assets.list", {"filter": "x" * 201}, "filter"),
        # nmap: targets and ports that would become options or shell
        ("nmap.scan", {"targets": "-iL /etc/shadow"}, "targets"),
        ("nmap.scan", {"targets": "127.0.0.1 -oN /tmp/out"}, "targets"),
        ("nmap.scan", {"targets": "127.0.0.1,-oX"}, "targets"),
        ("nmap.scan", {"targets": "127.0.0.1; id"}, "targets"),
        ("nmap.scan", {"targets": "$(id)"}, "targets"),
        ("nmap.scan", {"targets": ""}, "targets"),
        ("nmap.scan", {"targets": "10.0.0.1", "ports": "22 -sV"}, "ports"),
        ("nmap.scan", {"targets": "10.0.0.1", "ports": "ssh"}, "ports"),
    ],
)
def test_schemas_refuse_extra_and_dangerous_values(
    name: str, raw: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        CATALOGUE[name].validate(raw)
    assert field in {str(error["loc"][0]) for error in caught.value.errors() if error["loc"]}


def test_params_are_frozen() -> None:
    params = CATALOGUE["k8s.restart_pod"].validate({"namespace": "prod", "pod": "web"})
    with pytest.raises(ValidationError):
        params.pod = "other"  # type: ignore[attr-defined]
