"""`policy test`: what the engine would do with an alert, explained, recording nothing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from core.policy.engine import Decision, PolicySet

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class AlertUnderTest:
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    status: str = "firing"
    fingerprint: str = ""


def labels_from_pairs(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _LABEL.match(name):
            raise ValueError(f"label {pair!r}: expected name=value with a valid label name")
        labels[name] = value
    return labels


@dataclass(frozen=True)
class TestReport:
    alert: AlertUnderTest
    decisions: list[Decision]

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert": {"labels": self.alert.labels, "status": self.alert.status},
            "matches": [
                {
                    "policy": d.policy.name,
                    "action": d.action.name,
                    "risk": d.action.risk,
                    "params": d.params_dict if d.error is None else None,
                    "target": d.target,
                    "approval": d.policy.approval,
                    "dry_run": d.policy.dry_run,
                    "error": d.error,
                }
                for d in self.decisions
            ],
        }

    def as_text(self) -> str:
        labels = " ".join(f"{k}={v}" for k, v in sorted(self.alert.labels.items()))
        lines = [f"alert: {labels}"]
        if self.alert.status != "firing":
            lines.append("  resolved: would supersede the pending proposals it opened")
            return "\n".join(lines)
        if not self.decisions:
            lines.append("  no policy matches: nothing would be proposed")
        for decision in self.decisions:
            spec = decision.policy
            lines.append(f"  matches policy {spec.name} (priority {spec.priority})")
            if decision.error is not None:
                lines.append(f"    would record an error, no proposal: {decision.error}")
                continue
            params = json.dumps(decision.params_dict, sort_keys=True)
            lines.append(f"    would propose: {decision.action.name} {params}")
            lines.append(f"    target: {decision.target}  risk: {decision.action.risk}")
            guards = []
            if spec.cooldown_seconds:
                guards.append(f"cooldown {spec.cooldown_seconds}s")
            if spec.max_runs_per_hour:
                guards.append(f"max {spec.max_runs_per_hour}/hour")
            approval = "automatic" if spec.approval == "auto" else "a person's approval"
            lines.append(
                f"    approval: {approval}"
                + (f"; approvers: {', '.join(spec.approvers)}" if spec.approvers else "")
                + (f"; guard rails: {', '.join(guards)}" if guards else "")
                + ("; shadow mode (dry run)" if spec.dry_run else "")
            )
        return "\n".join(lines)


def describe_test(policy_set: PolicySet, alert: AlertUnderTest) -> TestReport:
    decisions = (
        policy_set.evaluate(
            alert.labels, alert.annotations, status=alert.status, fingerprint=alert.fingerprint
        )
        if alert.status == "firing"
        else []
    )
    return TestReport(alert, decisions)
