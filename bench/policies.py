"""Policy engine benchmark: per-alert `PolicySet.evaluate` against a linear scan.

Numbers, not pass/fail. Builds 10, 1,000 and 10,000 realistic policies (mostly one
alertname each, a few regex / negative matchers, ~2% with no equality matcher at all), times
each alert's evaluation separately with perf_counter_ns after a warm-up, and does the same
for the engine without its index: compile once, test every policy in priority order, first
match wins, then render. The issue's target: indexed p99 ≤ 50 µs at 10,000 policies.

    .venv/bin/python bench/policies.py [--quick] [--unindexed SHARE]

`--unindexed 0` shows what the index alone costs; the default 0.02 is the issue's mix.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.policy.engine import CompiledPolicy, Decision, PolicySet, render_decision
from core.policy.spec import PolicySpec
from core.policy.templating import alert_context

SIZES = (10, 1_000, 10_000)
SEED = 20240601

COMPONENTS = [
    "Kube",
    "Node",
    "Etcd",
    "Postgres",
    "Redis",
    "Kafka",
    "Nginx",
    "Haproxy",
    "Ceph",
    "Vsphere",
    "Api",
    "Billing",
    "Search",
    "Queue",
    "Cache",
    "Auth",
    "Gateway",
    "Ingest",
    "Ledger",
    "Mail",
]
SYMPTOMS = [
    "Down",
    "HighLatency",
    "ErrorRate",
    "CrashLooping",
    "NotReady",
    "DiskFull",
    "MemoryHigh",
    "CpuThrottled",
    "ReplicationLag",
    "CertExpiring",
    "QueueBacklog",
    "OOMKilled",
]
NAMESPACES = ["prod", "staging", "payments", "search", "platform", "data", "edge", "auth"]
SEVERITIES = ["critical", "warning", "info"]

PARAMS_BY_ACTION: dict[str, dict[str, Any]] = {
    "k8s.restart_pod": {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
    "k8s.rollout_restart": {
        "namespace": "{{ labels.namespace }}",
        "deployment": "{{ labels.deployment }}",
    },
    "k8s.scale": {
        "namespace": "{{ labels.namespace }}",
        "deployment": "{{ labels.deployment }}",
        "replicas": 4,
    },
    "vsphere.reboot_guest": {"vm": "{{ labels.instance.split(':')[0] }}"},
    "k8s.pod_logs": {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}", "tail": 200},
}
ACTIONS = list(PARAMS_BY_ACTION)


def alertname(i: int) -> str:
    return f"{COMPONENTS[i % len(COMPONENTS)]}{SYMPTOMS[i // len(COMPONENTS) % len(SYMPTOMS)]}{i}"


def build_specs(count: int, rng: random.Random, unindexed: float) -> list[dict[str, Any]]:
    """Policy dicts as an operator would write them (validated later, timed apart)."""
    policies = []
    for i in range(count):
        roll = rng.random()
        if roll < unindexed:
            # no equality matcher at all: the index cannot help, every alert checks these
            component = COMPONENTS[i % len(COMPONENTS)]
            symptom = SYMPTOMS[i % len(SYMPTOMS)]
            kind = rng.random()
            if kind < 0.45:  # a family of alerts
                matchers = [f'alertname=~"{component}{symptom}.*"', 'severity!="info"']
            elif kind < 0.75:
                matchers = [f'alertname=~".*{symptom}{i}"']
            elif kind < 0.95:
                matchers = ['namespace!="prod"', 'team!=""', f'job=~"job{i}-.*"']
            else:  # a broad catch-all
                matchers = ['severity=~"crit.*"', 'namespace!~"kube-.*|dev"']
        else:
            matchers = [f'alertname="{alertname(i)}"']
            if roll < 0.07:
                # an alternation over two alertnames: still indexed
                matchers = [f'alertname=~"{alertname(i)}|{alertname(i)}Legacy"']
            if rng.random() < 0.5:
                matchers.append('severity=~"critical|warning"')
            if rng.random() < 0.3:
                matchers.append(f'namespace="{rng.choice(NAMESPACES)}"')
            if rng.random() < 0.05:
                matchers.append('namespace!~"kube-.*"')
            if rng.random() < 0.03:
                matchers.append('pod=~"web-.*|api-.*"')
        action = rng.choice(ACTIONS)
        policies.append(
            {
                "name": f"policy-{i:05d}",
                "priority": rng.randint(1, 100),
                "matchers": matchers,
                "action": action,
                "params": PARAMS_BY_ACTION[action],
                "continue": rng.random() < 0.05,
            }
        )
    return policies


def build_alerts(count: int, policies: int, rng: random.Random) -> list[dict[str, str]]:
    """Alerts: ~30% aimed at a policy's alertname, the rest noise the policies ignore."""
    alerts = []
    for j in range(count):
        namespace = rng.choice(NAMESPACES)
        labels = {
            "severity": rng.choice(SEVERITIES),
            "namespace": namespace,
            "pod": f"web-{rng.randrange(1000):03d}-x{j % 97}",
            "deployment": "web",
            "instance": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}:9100",
            "job": rng.choice(["node", "kubelet", "blackbox"]),
            "prometheus": "monitoring/k8s",
        }
        roll = rng.random()
        if roll < 0.30:
            labels["alertname"] = alertname(rng.randrange(policies))
        elif roll < 0.95:
            labels["alertname"] = f"Unrelated{rng.choice(SYMPTOMS)}{rng.randrange(10**6)}"
        # else: no alertname at all
        alerts.append(labels)
    return alerts


ANNOTATIONS = {"summary": "something is wrong", "runbook_url": "https://runbooks/x"}


def naive_evaluate(
    policies: tuple[CompiledPolicy, ...], labels: Mapping[str, str]
) -> list[Decision]:
    """The engine without its index: every policy, in order, first match wins, then render."""
    matched = []
    for policy in policies:
        if policy.matches(labels):
            matched.append(policy)
            if not policy.spec.continue_matching:
                break
    if not matched:
        return []
    context = alert_context(dict(labels), ANNOTATIONS)
    return [render_decision(policy, context) for policy in matched]


def time_calls(
    call: Callable[[dict[str, str]], object], alerts: list[dict[str, str]], calls: int
) -> list[int]:
    for labels in alerts[: min(len(alerts), 200)]:  # warm-up
        call(labels)
    samples = []
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for k in range(calls):
            labels = alerts[k % len(alerts)]
            start = clock()
            call(labels)
            samples.append(clock() - start)
    finally:
        gc.enable()
    return samples


def where_time_goes(policy_set: PolicySet, alerts: list[dict[str, str]]) -> str:
    """Mean µs per alert in candidates(), the matcher checks, and rendering."""
    clock = time.perf_counter_ns
    candidates = match = total = 0
    checked = 0
    for labels in alerts:
        t0 = clock()
        found = policy_set.candidates(labels)
        t1 = clock()
        policy_set.matching(labels)
        t2 = clock()
        policy_set.evaluate(labels, ANNOTATIONS)
        t3 = clock()
        candidates += t1 - t0
        match += (t2 - t1) - (t1 - t0)
        total += t3 - t2
        checked += len(found)
    n = len(alerts) * 1000
    render = total - match - candidates
    return (
        f"candidates() {candidates / n:.1f}, matcher checks {match / n:.1f} "
        f"(~{checked / len(alerts):.0f} policies tested), rendering {render / n:.1f}"
    )


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def run(quick: bool, unindexed: float) -> None:
    rng = random.Random(SEED)
    rows = []
    print(
        f"python {sys.version.split()[0]}; seed {SEED}; "
        f"{unindexed:.0%} of policies without an equality matcher\n"
    )
    for size in SIZES:
        raw = build_specs(size, rng, unindexed if size >= 50 else 0.0)
        t0 = time.perf_counter()
        specs = [PolicySpec.model_validate(p) for p in raw]
        t1 = time.perf_counter()
        policy_set = PolicySet(specs)
        t2 = time.perf_counter()
        alerts = build_alerts(2_000, size, rng)
        indexed_calls = 5_000 if quick else 30_000
        naive_calls = max(200, min(indexed_calls, int(2_000_000 / size)))
        if quick:
            naive_calls = min(naive_calls, 500)

        def indexed(labels: dict[str, str], ps: PolicySet = policy_set) -> object:
            return ps.evaluate(labels, ANNOTATIONS)

        def naive(labels: dict[str, str], ps: PolicySet = policy_set) -> object:
            return naive_evaluate(ps.policies, labels)

        # same answers, or the comparison means nothing
        for labels in alerts[:300]:
            a = [(d.policy.name, d.params_dict, d.error) for d in policy_set.evaluate(labels)]
            b = [
                (d.policy.name, d.params_dict, d.error)
                for d in naive_evaluate(policy_set.policies, labels)
            ]
            assert a == b, labels
        matching = sum(bool(policy_set.matching(a)) for a in alerts) / len(alerts)
        ix = time_calls(indexed, alerts, indexed_calls)
        nv = time_calls(naive, alerts, naive_calls)
        breakdown = where_time_goes(policy_set, alerts[:1_000])
        rows.append(
            (
                size,
                percentile(ix, 0.50),
                percentile(ix, 0.99),
                percentile(nv, 0.50),
                percentile(nv, 0.99),
                statistics.fmean(nv) / statistics.fmean(ix),
            )
        )
        print(
            f"{size:>6} policies: specs validated in {t1 - t0:6.2f} s, PolicySet built in "
            f"{t2 - t1:6.2f} s ({len(policy_set._unindexed)} unindexed); "
            f"{matching:.0%} of alerts match; {len(ix)} indexed / {len(nv)} naive calls"
        )
        print(f"{'':>16}where the time goes (mean µs per alert): {breakdown}")
    print()
    print("| policies | indexed p50 µs | indexed p99 µs | naive p50 µs | naive p99 µs | speed-up |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, ip50, ip99, np50, np99, speedup in rows:
        print(f"| {size:,} | {ip50:.1f} | {ip99:.1f} | {np50:.1f} | {np99:.1f} | {speedup:.1f}× |")
    print("\nspeed-up = mean naive time / mean indexed time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    parser.add_argument(
        "--unindexed",
        type=float,
        default=0.02,
        metavar="SHARE",
        help="share of policies with no equality matcher (default 0.02)",
    )
    args = parser.parse_args()
    run(args.quick, args.unindexed)


if __name__ == "__main__":
    main()
