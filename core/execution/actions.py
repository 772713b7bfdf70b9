"""What each catalogue action does: the adapter call behind an action name.

One function, `run_action`, serves the worker (write actions a person approved) and, later,
the agent's read-only tools. Adapters are reached through their typed ports
(`core.ports`); their errors arrive as `IntegrationError` and leave as `ActionFailed` with
the same `transient` flag, so the job's retry policy never parses an adapter's exceptions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.actions.catalogue import Params
from core.execution.integrations import Integrations
from core.ports import AdapterOutcome, IntegrationError, NotConfigured, Outcome

STRATEGIC_MERGE = "application/strategic-merge-patch+json"

# What a job records of an action: the port's outcome type.
ActionResult = Outcome


class ActionFailed(Exception):
    """The action did not happen. `transient`: trying again later could succeed."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Limits:
    """Guard rails that depend on configuration and policy, not on the params schema."""

    max_replicas: int
    allow_scale_to_zero: bool = False


def _p(params: Params) -> dict[str, Any]:
    return params.model_dump()


def describe_request(action: str, params: Params) -> str:
    """The write an action would send, without asking anyone (dry run, nothing configured)."""
    p = _p(params)
    if action == "k8s.restart_pod":
        return (
            f"DELETE /api/v1/namespaces/{p['namespace']}/pods/{p['pod']} "
            "propagationPolicy=Background"
        )
    if action == "k8s.rollout_restart":
        body = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "<now>"}}
                }
            }
        }
        path = f"/apis/apps/v1/namespaces/{p['namespace']}/deployments/{p['deployment']}"
        return f"PATCH {path} ({STRATEGIC_MERGE}) {json.dumps(body, separators=(',', ':'))}"
    if action == "k8s.scale":
        path = f"/apis/apps/v1/namespaces/{p['namespace']}/deployments/{p['deployment']}/scale"
        body = {"spec": {"replicas": p["replicas"]}}
        return f"PATCH {path} ({STRATEGIC_MERGE}) {json.dumps(body, separators=(',', ':'))}"
    methods = {
        "vsphere.reset_vm": "ResetVM_Task",
        "vsphere.power_on": "PowerOnVM_Task",
        "vsphere.power_off": "PowerOffVM_Task",
        "vsphere.reboot_guest": "RebootGuest",
    }
    if action in methods:
        return f"{methods[action]} on the VirtualMachine named {p['vm']!r}"
    return f"{action} {json.dumps(p, sort_keys=True)}"


def _kubernetes(
    integrations: Integrations, action: str, params: Params, dry_run: bool
) -> AdapterOutcome:
    k8s = integrations.kubernetes()
    p = _p(params)
    calls: dict[str, Callable[[], AdapterOutcome]] = {
        "k8s.restart_pod": lambda: k8s.restart_pod(p["namespace"], p["pod"], dry_run=dry_run),
        "k8s.rollout_restart": lambda: k8s.rollout_restart(
            p["namespace"], p["deployment"], dry_run=dry_run
        ),
        "k8s.scale": lambda: k8s.scale(
            p["namespace"], p["deployment"], p["replicas"], dry_run=dry_run
        ),
        "k8s.list_pods": lambda: k8s.list_pods(p["namespace"], p.get("selector")),
        "k8s.pod_logs": lambda: k8s.pod_logs(p["namespace"], p["pod"], tail=p["tail"]),
        "k8s.events": lambda: k8s.events(p["namespace"]),
    }
    return calls[action]()


def _vsphere(
    integrations: Integrations, action: str, params: Params, dry_run: bool
) -> AdapterOutcome:
    vsphere = integrations.vsphere()
    vm = _p(params)["vm"]
    calls: dict[str, Callable[[], AdapterOutcome]] = {
        "vsphere.reset_vm": lambda: vsphere.reset_vm(vm, dry_run=dry_run),
        "vsphere.reboot_guest": lambda: vsphere.reboot_guest(vm, dry_run=dry_run),
        "vsphere.power_on": lambda: vsphere.power_on(vm, dry_run=dry_run),
        "vsphere.power_off": lambda: vsphere.power_off(vm, dry_run=dry_run),
    }
    return calls[action]()


Handler = Callable[[Integrations, str, Params, bool], AdapterOutcome]
_HANDLERS: dict[str, Handler] = {
    **{
        name: _kubernetes
        for name in (
            "k8s.restart_pod",
            "k8s.rollout_restart",
            "k8s.scale",
            "k8s.list_pods",
            "k8s.pod_logs",
            "k8s.events",
        )
    },
    **{
        name: _vsphere
        for name in (
            "vsphere.reset_vm",
            "vsphere.reboot_guest",
            "vsphere.power_on",
            "vsphere.power_off",
        )
    },
}


def check_limits(action: str, params: Params, limits: Limits) -> None:
    """Refuse what configuration forbids even if the schema allows it."""
    if action == "k8s.scale":
        replicas = int(_p(params)["replicas"])
        if replicas > limits.max_replicas:
            raise ActionFailed(
                f"refused: {replicas} replicas is above the configured maximum "
                f"of {limits.max_replicas} (INFRAAI_MAX_REPLICAS)"
            )
        if replicas == 0 and not limits.allow_scale_to_zero:
            raise ActionFailed("refused: scaling to 0 needs a policy with allow_scale_to_zero")


def run_action(
    integrations: Integrations,
    action: str,
    params: Params,
    *,
    dry_run: bool,
    limits: Limits,
) -> ActionResult:
    """Run one action synchronously (call it from a thread or the worker)."""
    handler = _HANDLERS.get(action)
    if handler is None:
        raise ActionFailed(f"{action} is not executable by the worker")
    check_limits(action, params, limits)
    try:
        with integrations.faults():
            outcome = handler(integrations, action, params, dry_run)
    except NotConfigured as exc:
        if dry_run:
            return ActionResult(
                f"nothing was read or sent ({exc})",
                describe_request(action, params),
                None,
                dry_run=True,
            )
        raise ActionFailed(str(exc)) from None
    except IntegrationError as exc:
        raise ActionFailed(exc.message, transient=exc.transient) from None
    return Outcome.of(outcome)
