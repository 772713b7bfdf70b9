"""Small builders shared by tests: webhook payloads, policies, row counts."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from core.policy.spec import PolicySpec, parse_policy
from core.policy.store import apply_policies
from core.runtime import Runtime

T = TypeVar("T")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_alert_payload() -> dict[str, Any]:
    return json.loads((EXAMPLES / "alert.json").read_text())


def alert(
    labels: dict[str, str],
    *,
    status: str = "firing",
    starts_at: str = "2026-11-29T08:00:00Z",
    annotations: dict[str, str] | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "status": status,
        "labels": labels,
        "annotations": annotations or {"summary": "something is wrong"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else starts_at,
        "generatorURL": "http://127.0.0.1:9090/graph",
    }
    if fingerprint is not None:
        item["fingerprint"] = fingerprint
    return item


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    statuses = {a["status"] for a in alerts}
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing" if "firing" in statuses else "resolved",
        "receiver": "infraai",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [copy.deepcopy(a) for a in alerts],
    }


def crashloop(pod: str = "api-1", namespace: str = "prod", **kwargs: Any) -> dict[str, Any]:
    labels = {
        "alertname": "KubePodCrashLooping",
        "namespace": namespace,
        "pod": pod,
        "severity": "critical",
    }
    return alert(labels, **kwargs)


RESTART_POLICY: dict[str, Any] = {
    "name": "restart-crashlooping-pod",
    "priority": 10,
    "matchers": ['alertname="KubePodCrashLooping"', 'severity=~"critical|warning"'],
    "action": "k8s.restart_pod",
    "params": {"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
}


def policy(**overrides: Any) -> PolicySpec:
    data = {**RESTART_POLICY, **overrides}
    return parse_policy(data)


async def install_policies(runtime: Runtime, *specs: PolicySpec) -> None:
    async with runtime.sessions() as session, session.begin():
        await apply_policies(session, specs, "test")
    runtime.policies.invalidate()


async def count(runtime: Runtime, table: str, where: str = "") -> int:
    async with runtime.sessions() as session:
        sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
        return int(await session.scalar(sa.text(sql)) or 0)


async def rows(runtime: Runtime, sql: str) -> list[Any]:
    async with runtime.sessions() as session:
        return list((await session.execute(sa.text(sql))).mappings().all())


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    check: Callable[[T], bool],
    *,
    within: float,
    what: str,
    details: Callable[[], str] = lambda: "",
) -> T:
    """Await `probe()` until `check` holds; the deadline only guards against hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await probe()
        if check(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {value!r}\n{details()}")
        await asyncio.sleep(0.05)
