"""POST /alerts end to end through the aiohttp app, on SQLite and on real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.http.app import create_app
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import (
    alert,
    count,
    crashloop,
    example_alert_payload,
    install_policies,
    payload,
    policy,
    rows,
)

TOKEN = "s3cret-token"


@pytest.fixture
async def app_runtime(db_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(make_settings(db_url, alerts_token=TOKEN))
    await install_policies(runtime, policy())
    yield runtime
    await runtime.close()


@pytest.fixture
async def client(app_runtime: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(app_runtime))) as test_client:
        yield test_client


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def post(client: TestClient[Any, Any], body: Any, headers: dict[str, str] | None = None):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return await client.post("/alerts", data=data, headers=AUTH if headers is None else headers)


async def test_example_alert_records_one_pending_proposal(client, app_runtime) -> None:
    response = await post(client, example_alert_payload())
    assert response.status == 200
    assert await response.json() == {"received": 1, "proposals": 1}

    [proposal] = await rows(app_runtime, "SELECT * FROM proposals")
    assert proposal["status"] == "pending"
    assert proposal["action"] == "k8s.restart_pod"
    assert proposal["target"] == "prod/api-7d4b9c6f8-x2k9q"
    assert proposal["policy_name"] == "restart-crashlooping-pod"
    assert proposal["slack_channel"] == "C0OPS"
    assert proposal["expires_at"] is not None
    params = proposal["params"]
    params = json.loads(params) if isinstance(params, str) else params
    assert params == {"namespace": "prod", "pod": "api-7d4b9c6f8-x2k9q"}
    [stored] = await rows(app_runtime, "SELECT * FROM alerts")
    assert stored["fingerprint"] == "5f3c2e1a9b7d4c60" and stored["status"] == "firing"
    assert await count(app_runtime, "audit_events", "verb = 'proposal.created'") == 1
    assert await count(app_runtime, "notifications", "kind = 'proposal'") == 1


async def test_resolved_alert_supersedes_its_pending_proposal(client, app_runtime) -> None:
    await post(client, payload(crashloop()))
    response = await post(client, payload(crashloop(status="resolved")))
    assert response.status == 200
    assert await response.json() == {"received": 1, "proposals": 0}
    [proposal] = await rows(app_runtime, "SELECT status, status_reason FROM proposals")
    assert proposal["status"] == "superseded"
    assert "resolved" in proposal["status_reason"]
    assert await count(app_runtime, "notifications", "kind = 'update'") == 1
    assert await count(app_runtime, "audit_events", "verb = 'proposal.superseded'") == 1


async def test_late_firing_retry_does_not_reopen_a_resolved_episode(client, app_runtime) -> None:
    await post(client, payload(crashloop()))
    await post(client, payload(crashloop(status="resolved")))
    await post(client, payload(crashloop()))  # Alertmanager retrying an old delivery
    [stored] = await rows(app_runtime, "SELECT status, times_received FROM alerts")
    assert stored["status"] == "resolved" and stored["times_received"] == 3
    assert await count(app_runtime, "proposals") == 1


async def test_same_notification_100_times_20_concurrently_gives_one_proposal(
    client, app_runtime
) -> None:
    body = payload(crashloop())
    for _round in range(5):
        responses = await asyncio.gather(*(post(client, body) for _ in range(20)))
        assert [r.status for r in responses] == [200] * 20
    assert await count(app_runtime, "alerts") == 1
    assert await count(app_runtime, "proposals") == 1
    [stored] = await rows(app_runtime, "SELECT times_received FROM alerts")
    assert stored["times_received"] == 100


async def test_many_pods_in_one_payload_get_one_proposal_each(client, app_runtime) -> None:
    body = payload(*(crashloop(pod=f"api-{i}") for i in range(10)))
    response = await post(client, body)
    assert await response.json() == {"received": 10, "proposals": 10}
    targets = {r["target"] for r in await rows(app_runtime, "SELECT target FROM proposals")}
    assert targets == {f"prod/api-{i}" for i in range(10)}


async def test_new_episode_inside_cooldown_is_recorded_rate_limited(app_runtime, client) -> None:
    await install_policies(app_runtime, policy(cooldown_seconds=600))
    await post(client, payload(crashloop(starts_at="2026-11-29T08:00:00Z")))
    await post(client, payload(crashloop(status="resolved", starts_at="2026-11-29T08:00:00Z")))
    # The pod crashes again: a new episode (new startsAt), inside the cooldown.
    response = await post(client, payload(crashloop(starts_at="2026-11-29T08:05:00Z")))
    assert await response.json() == {"received": 1, "proposals": 1}
    statuses = [
        r["status"] for r in await rows(app_runtime, "SELECT status FROM proposals ORDER BY id")
    ]
    assert statuses == ["superseded", "rate_limited"]
    [limited] = await rows(
        app_runtime, "SELECT status_reason FROM proposals WHERE status = 'rate_limited'"
    )
    assert limited["status_reason"].startswith("cooldown")
    assert await count(app_runtime, "audit_events", "verb = 'proposal.rate_limited'") == 1
    # A retry of the rate-limited episode records nothing more.
    await post(client, payload(crashloop(starts_at="2026-11-29T08:05:00Z")))
    assert await count(app_runtime, "proposals") == 2


async def test_hourly_cap_limits_proposals_per_policy(app_runtime, client) -> None:
    await install_policies(app_runtime, policy(max_runs_per_hour=3))
    response = await post(client, payload(*(crashloop(pod=f"api-{i}") for i in range(5))))
    assert await response.json() == {"received": 5, "proposals": 5}
    statuses = sorted(r["status"] for r in await rows(app_runtime, "SELECT status FROM proposals"))
    assert statuses == ["pending"] * 3 + ["rate_limited"] * 2


async def test_missing_label_is_recorded_not_rendered_empty(client, app_runtime) -> None:
    labels = {"alertname": "KubePodCrashLooping", "namespace": "prod", "severity": "critical"}
    response = await post(client, payload(alert(labels)))
    assert response.status == 200
    assert await response.json() == {"received": 1, "proposals": 0}
    [event] = await rows(
        app_runtime, "SELECT * FROM audit_events WHERE verb = 'policy.render_failed'"
    )
    detail = event["detail"] if isinstance(event["detail"], dict) else json.loads(event["detail"])
    assert "pod" in detail["error"]
    # Redelivery of the same episode does not repeat the audit event.
    await post(client, payload(alert(labels)))
    assert await count(app_runtime, "audit_events", "verb = 'policy.render_failed'") == 1


async def test_label_that_fails_the_schema_is_refused(client, app_runtime) -> None:
    response = await post(client, payload(crashloop(namespace="kube-system --all")))
    assert await response.json() == {"received": 1, "proposals": 0}
    assert await count(app_runtime, "proposals") == 0
    assert await count(app_runtime, "audit_events", "verb = 'policy.render_failed'") == 1


async def test_continue_lets_a_second_policy_propose(app_runtime, client) -> None:
    await install_policies(
        app_runtime,
        policy(**{"continue": True}),
        policy(
            name="roll-deployment",
            priority=20,
            action="k8s.rollout_restart",
            params={"namespace": "{{ labels.namespace }}", "deployment": "api"},
        ),
    )
    response = await post(client, payload(crashloop()))
    assert await response.json() == {"received": 1, "proposals": 2}


BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("malformed json", b"{not json", 400, "malformed JSON"),
    ("not an object", [1, 2], 400, "JSON object"),
    ("wrong version", {**payload(crashloop()), "version": "3"}, 400, "version"),
    ("no alerts", {**payload(crashloop()), "alerts": []}, 400, "alerts"),
    (
        "missing labels",
        payload({k: v for k, v in crashloop().items() if k != "labels"}),
        400,
        "labels",
    ),
    ("bad status", payload({**crashloop(), "status": "exploding"}), 400, "status"),
    ("bad startsAt", payload({**crashloop(), "startsAt": "yesterday"}), 400, "startsAt"),
    ("2 MiB body", b"{" + b" " * (2 * 1024 * 1024) + b"}", 413, "1 MiB"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "reason"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
async def test_bad_input_gets_a_reason_and_writes_nothing(
    client, app_runtime, case, body, status, reason
) -> None:
    tables = ("alerts", "proposals", "audit_events", "notifications")
    before = [await count(app_runtime, table) for table in tables]
    response = await post(client, body)
    assert response.status == status
    assert reason in (await response.json())["error"]
    assert [await count(app_runtime, table) for table in tables] == before
    assert await count(app_runtime, "alerts") == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"am:wrong").decode()},
        {"Authorization": f"Token {TOKEN}"},
    ],
    ids=["missing", "wrong bearer", "garbled basic", "wrong basic", "wrong scheme"],
)
async def test_bad_credentials_get_401_and_write_nothing(client, app_runtime, headers) -> None:
    response = await post(client, payload(crashloop()), headers=headers)
    assert response.status == 401
    assert await count(app_runtime, "alerts") == 0


async def test_basic_auth_password_is_accepted(client, app_runtime) -> None:
    basic = {"Authorization": "Basic " + base64.b64encode(f"am:{TOKEN}".encode()).decode()}
    response = await post(client, payload(crashloop()), headers=basic)
    assert response.status == 200


async def test_without_a_token_only_loopback_may_post(sqlite_db: str) -> None:
    runtime = Runtime.build(make_settings(sqlite_db, alerts_token=None))
    try:
        async with TestClient(TestServer(create_app(runtime), host="127.0.0.1")) as test_client:
            response = await test_client.post("/alerts", data=json.dumps(payload(crashloop())))
            assert response.status == 200
    finally:
        await runtime.close()


async def test_health_ready_and_metrics(client, app_runtime) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    body = await ready.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["integrations"]["kubernetes"]["state"] in ("not configured", "ok")
    assert body["integrations"]["vsphere"] == {
        "state": "not configured",
        "detail": "vSphere is not configured: VSPHERE_HOST is unset",
    }
    await post(client, payload(crashloop()))
    await post(client, b"{", headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'infraai_alerts_received_total{status="firing"} 1.0' in text
    assert 'infraai_proposals_created_total{policy="restart-crashlooping-pod"} 1.0' in text
    assert 'infraai_webhook_rejects_total{reason="malformed"} 1.0' in text
    assert "infraai_webhook_duration_seconds_bucket" in text


async def test_many_deliveries_each_proposing_reuse_prepared_statements(
    client, app_runtime
) -> None:
    # PostgreSQL switches a prepared statement to a generic plan from its sixth run; the
    # ON CONFLICT predicate must still match the partial unique index then.
    for i in range(12):
        response = await post(client, payload(crashloop(pod=f"api-{i}")))
        assert await response.json() == {"received": 1, "proposals": 1}, i
    assert await count(app_runtime, "proposals", "status = 'pending'") == 12
