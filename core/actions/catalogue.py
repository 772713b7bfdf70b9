"""The action catalogue: names, descriptions, params schemas and risks.

Names and parameter names are a contract — policies and the model refer to them. The
schemas are strict (unknown params are refused, names must look like what Kubernetes and
vSphere accept) because a rendered template is untrusted input: a label value of
`kube-system --all` must fail validation, not reach an API call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Risk = Literal["read", "write"]

# DNS-1123 label (namespaces) and subdomain (pods, deployments), as the API server checks.
Namespace = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
]
ObjectName = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    ),
]
VmName = Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f/]+$")]
Selector = Annotated[str, StringConstraints(max_length=512, pattern=r"^[A-Za-z0-9_./=!,() -]*$")]
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]+[smhdw]$")]

# Hard ceiling on k8s.scale regardless of configuration; the configured maximum is lower.
SCALE_HARD_LIMIT = 1000


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PodParams(Params):
    namespace: Namespace
    pod: ObjectName


class DeploymentParams(Params):
    namespace: Namespace
    deployment: ObjectName


class ScaleParams(DeploymentParams):
    replicas: int = Field(ge=0, le=SCALE_HARD_LIMIT)


class VmParams(Params):
    vm: VmName


class ListPodsParams(Params):
    namespace: Namespace
    selector: Selector | None = None


class PodLogsParams(PodParams):
    tail: int = Field(default=100, ge=1, le=5000)


class NamespaceParams(Params):
    namespace: Namespace


class QueryParams(Params):
    query: str = Field(min_length=1, max_length=4000)


class QueryRangeParams(QueryParams):
    range: Duration = "1h"
    step: Duration | None = None


class DashboardSearchParams(Params):
    query: str = Field(default="", max_length=200)


# Hosts, addresses, CIDRs and ranges separated by commas or spaces. No item may start with
# '-': nmap (through python-nmap's shlex.split) would read `-iL /etc/shadow` as an option.
_SCAN_TARGET = r"[0-9A-Za-z.:/][0-9A-Za-z.:/-]*"


class ScanParams(Params):
    targets: str = Field(
        min_length=1, max_length=200, pattern=rf"^{_SCAN_TARGET}(?:[, ]+{_SCAN_TARGET})*$"
    )
    ports: str | None = Field(default=None, max_length=200, pattern=r"^[0-9,-]+$")


class FilterParams(Params):
    filter: str = Field(default="", max_length=200)


class NoParams(Params):
    pass


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    params: type[Params]
    risk: Risk
    target: Callable[[Params], str]

    @property
    def tool_name(self) -> str:
        """The name models see: some model APIs refuse dots in tool names."""
        return self.name.replace(".", "_")

    def validate(self, raw: dict[str, Any]) -> Params:
        return self.params.model_validate(raw)


def _ns_obj(field: str) -> Callable[[Params], str]:
    return lambda p: f"{dict(p)['namespace']}/{dict(p)[field]}"


def _attr(field: str, prefix: str = "") -> Callable[[Params], str]:
    return lambda p: f"{prefix}{dict(p)[field]}"


_ACTIONS = [
    ActionSpec(
        "k8s.restart_pod",
        "Delete a pod so its controller (Deployment, StatefulSet, …) recreates it. "
        "Refused for a pod no controller owns.",
        PodParams,
        "write",
        _ns_obj("pod"),
    ),
    ActionSpec(
        "k8s.rollout_restart",
        "Restart every pod of a deployment gradually, as `kubectl rollout restart` does.",
        DeploymentParams,
        "write",
        _ns_obj("deployment"),
    ),
    ActionSpec(
        "k8s.scale",
        "Set a deployment's replica count (bounded by the configured maximum; 0 only where "
        "the policy allows it).",
        ScaleParams,
        "write",
        _ns_obj("deployment"),
    ),
    ActionSpec(
        "vsphere.reset_vm",
        "Hard-reset a virtual machine (like pressing reset).",
        VmParams,
        "write",
        _attr("vm", "vm/"),
    ),
    ActionSpec(
        "vsphere.reboot_guest",
        "Ask the guest OS to reboot cleanly (needs VMware Tools).",
        VmParams,
        "write",
        _attr("vm", "vm/"),
    ),
    ActionSpec(
        "vsphere.power_on", "Power on a virtual machine.", VmParams, "write", _attr("vm", "vm/")
    ),
    ActionSpec(
        "vsphere.power_off",
        "Power off a virtual machine (hard, not a guest shutdown).",
        VmParams,
        "write",
        _attr("vm", "vm/"),
    ),
    ActionSpec(
        "k8s.list_pods",
        "List the pods of a namespace with their phase, readiness and "
        "restarts; optional label selector.",
        ListPodsParams,
        "read",
        _attr("namespace"),
    ),
    ActionSpec(
        "k8s.pod_logs", "The last lines of a pod's log.", PodLogsParams, "read", _ns_obj("pod")
    ),
    ActionSpec(
        "k8s.events",
        "Recent events of a namespace, newest first.",
        NamespaceParams,
        "read",
        _attr("namespace"),
    ),
    ActionSpec(
        "prometheus.query", "Evaluate a PromQL instant query.", QueryParams, "read", _attr("query")
    ),
    ActionSpec(
        "prometheus.query_range",
        "Evaluate a PromQL range query (e.g. range 1h).",
        QueryRangeParams,
        "read",
        _attr("query"),
    ),
    ActionSpec(
        "grafana.search_dashboards",
        "Search Grafana dashboards by title.",
        DashboardSearchParams,
        "read",
        _attr("query"),
    ),
    ActionSpec(
        "nmap.scan",
        "Scan hosts or a CIDR for open TCP ports (allowed ranges only).",
        ScanParams,
        "read",
        _attr("targets"),
    ),
    ActionSpec(
        "assets.list",
        "Discovered hosts from earlier scans, optionally filtered.",
        FilterParams,
        "read",
        _attr("filter"),
    ),
    ActionSpec(
        "policies.list",
        "The remediation policies in force.",
        NoParams,
        "read",
        lambda _p: "policies",
    ),
]

CATALOGUE: dict[str, ActionSpec] = {spec.name: spec for spec in _ACTIONS}
BY_TOOL_NAME: dict[str, ActionSpec] = {spec.tool_name: spec for spec in _ACTIONS}


class UnknownAction(KeyError):
    pass


def get_action(name: str) -> ActionSpec:
    """Look an action up by its catalogue name or its tool name (`k8s_scale`)."""
    spec = CATALOGUE.get(name) or BY_TOOL_NAME.get(name)
    if spec is None:
        raise UnknownAction(name)
    return spec


def describe_errors(exc: ValidationError) -> str:
    """Pydantic's errors as one line: `pod: String should match pattern …`."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "params"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
