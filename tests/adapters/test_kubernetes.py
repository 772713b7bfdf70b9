"""The Kubernetes adapter, through the official client, against the stateful fake API server.

The fake runs on the test's event loop; the adapter is synchronous, so every call goes
through ``asyncio.to_thread`` — exactly how code on the bot's event loop must call it.
Assertions look at what reached the server (``fake.requests``), not only at return values:
a dry run must leave no write there, and a real write must be the request kubectl sends.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from kubernetes import client as k8s

from adapters.kubernetes import (
    ActionOutcome,
    KubernetesAdapter,
    KubernetesError,
    KubernetesNotConfigured,
)
from tests.fakes.kube_api import TOKEN, FakeKubeAPI, RecordedRequest, write_kubeconfig

STRATEGIC = "application/strategic-merge-patch+json"
POD_KEYS = {"name", "phase", "status", "ready", "restarts", "node", "age_seconds", "owner"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeAPI]:
    api = FakeKubeAPI()
    api.add_deployment("prod", "api", replicas=2)
    api.add_pod("prod", "debug", restarts=7, waiting="CrashLoopBackOff")  # bare: no owner
    await api.start()
    yield api
    await api.stop()


def make_adapter(tmp_path: Path, url: str, **kwargs: object) -> KubernetesAdapter:
    token = str(kwargs.pop("token", TOKEN))
    path = write_kubeconfig(tmp_path / f"kubeconfig-{time.monotonic_ns()}", url, token=token)
    return KubernetesAdapter(kubeconfig=str(path), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def adapter(fake: FakeKubeAPI, tmp_path: Path) -> Iterator[KubernetesAdapter]:
    with make_adapter(tmp_path, fake.url, request_timeout=2.0) as kube:
        yield kube


def api_pods(fake: FakeKubeAPI) -> list[str]:
    return sorted(p["metadata"]["name"] for p in fake.pods_of("prod", "api"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- restart_pod -------------------------------------------------------------------------


async def test_restart_pod_deletes_like_kubectl_and_the_pod_is_replaced(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    before = api_pods(fake)
    victim = before[0]

    outcome = await asyncio.to_thread(adapter.restart_pod, "prod", victim)

    path = f"/api/v1/namespaces/prod/pods/{victim}"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", path), ("DELETE", path)]
    assert fake.writes()[0].json_body == {"propagationPolicy": "Background"}
    assert outcome.request == f"DELETE {path} propagationPolicy=Background"
    assert outcome.dry_run is False
    assert "ReplicaSet/api-" in outcome.summary and victim in outcome.summary
    after = api_pods(fake)
    assert victim not in after and len(after) == 2  # the controller replaced it
    assert before[1] in after


async def test_restart_pod_refuses_a_bare_pod_and_leaves_it(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    with pytest.raises(KubernetesError) as caught:
        await asyncio.to_thread(adapter.restart_pod, "prod", "debug")

    assert caught.value.reason == "refused"
    assert caught.value.transient is False
    assert str(caught.value) == (
        "pod prod/debug has no controller; deleting it would not bring it back"
    )
    assert fake.writes() == []
    assert "debug" in fake.pods["prod"]


async def test_restart_pod_dry_run_reads_but_never_writes(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    victim = api_pods(fake)[0]

    outcome = await asyncio.to_thread(adapter.restart_pod, "prod", victim, dry_run=True)

    assert outcome.dry_run is True
    assert outcome.request == (
        f"DELETE /api/v1/namespaces/prod/pods/{victim} propagationPolicy=Background"
    )
    assert outcome.summary.startswith("dry run: would delete")
    assert [r.method for r in fake.requests] == ["GET"]
    assert victim in api_pods(fake)


async def test_restart_pod_of_a_missing_pod_is_not_found_even_in_dry_run(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    for dry_run in (False, True):
        with pytest.raises(KubernetesError) as caught:
            await asyncio.to_thread(adapter.restart_pod, "prod", "api-1", dry_run=dry_run)
        assert caught.value.reason == "not_found"
        assert caught.value.transient is False
        assert str(caught.value) == "pod prod/api-1 not found"
    assert fake.writes() == []


async def test_restart_pod_forbidden_names_what_was_refused(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    fake.forbid("prod", "delete")
    victim = api_pods(fake)[0]

    with pytest.raises(KubernetesError) as caught:
        await asyncio.to_thread(adapter.restart_pod, "prod", victim)

    err = caught.value
    assert (err.reason, err.transient, err.status) == ("forbidden", False, 403)
    assert err.message.startswith(f"forbidden: cannot delete pod prod/{victim}: User ")
    assert 'cannot delete resource "pods"' in err.message and "\n" not in err.message
    assert victim in api_pods(fake)


async def test_malformed_names_are_refused_before_any_request(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    for call in (
        lambda: adapter.restart_pod("prod", "../../nodes/x"),
        lambda: adapter.rollout_restart("Prod", "api"),
        lambda: adapter.scale("prod", "api", -1),
        lambda: adapter.scale("prod", "api", True),
    ):
        with pytest.raises(KubernetesError) as caught:
            await asyncio.to_thread(call)
        assert caught.value.reason == "invalid"
    assert fake.requests == []


# ---- rollout_restart ---------------------------------------------------------------------


async def test_rollout_restart_sends_one_strategic_merge_patch(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    before = api_pods(fake)
    now = datetime(2024, 5, 1, 12, 30, 5, 123456, tzinfo=UTC)

    outcome = await asyncio.to_thread(adapter.rollout_restart, "prod", "api", now=now)

    body = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T12:30:05Z"}
                }
            }
        }
    }
    path = "/apis/apps/v1/namespaces/prod/deployments/api"
    assert fake.writes() == [RecordedRequest("PATCH", path, STRATEGIC, body)]
    assert outcome.request == (
        f"PATCH {path} ({STRATEGIC}) "
        '{"spec":{"template":{"metadata":{"annotations":'
        '{"kubectl.kubernetes.io/restartedAt":"2024-05-01T12:30:05Z"}}}}}'
    )
    dep = fake.deployments["prod"]["api"]
    assert dep["metadata"]["generation"] == 2
    assert outcome.data == {"restartedAt": "2024-05-01T12:30:05Z", "generation": 2}
    after = api_pods(fake)
    assert len(after) == 2 and not set(before) & set(after)  # every pod rolled


async def test_rollout_restart_dry_run_and_missing_deployment(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    outcome = await asyncio.to_thread(adapter.rollout_restart, "prod", "api", dry_run=True)
    assert outcome.dry_run and outcome.request is not None
    assert "kubectl.kubernetes.io/restartedAt" in outcome.request
    assert fake.deployments["prod"]["api"]["metadata"]["generation"] == 1

    with pytest.raises(KubernetesError) as caught:
        await asyncio.to_thread(adapter.rollout_restart, "prod", "nope")
    assert (caught.value.reason, str(caught.value)) == (
        "not_found",
        "deployment prod/nope not found",
    )
    assert fake.writes() == []


# ---- scale -------------------------------------------------------------------------------


async def test_scale_patches_the_scale_subresource_and_pods_follow(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    outcome = await asyncio.to_thread(adapter.scale, "prod", "api", 5)

    path = "/apis/apps/v1/namespaces/prod/deployments/api/scale"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", path), ("PATCH", path)]
    assert fake.writes() == [RecordedRequest("PATCH", path, STRATEGIC, {"spec": {"replicas": 5}})]
    assert outcome.summary == "api: 2 → 5 replicas"
    assert outcome.request == f'PATCH {path} ({STRATEGIC}) {{"spec":{{"replicas":5}}}}'
    assert outcome.data == {"from": 2, "to": 5}
    assert len(api_pods(fake)) == 5
    assert fake.deployments["prod"]["api"]["metadata"]["generation"] == 2

    down = await asyncio.to_thread(adapter.scale, "prod", "api", 1)
    assert down.summary == "api: 5 → 1 replicas"
    assert len(api_pods(fake)) == 1


async def test_scale_dry_run_and_no_op(fake: FakeKubeAPI, adapter: KubernetesAdapter) -> None:
    dry = await asyncio.to_thread(adapter.scale, "prod", "api", 4, dry_run=True)
    assert dry.dry_run and dry.summary == "dry run: api: 2 → 4 replicas"
    assert dry.request is not None and dry.request.endswith('{"spec":{"replicas":4}}')

    same = await asyncio.to_thread(adapter.scale, "prod", "api", 2)
    assert same.request is None and "already at 2" in same.summary

    assert fake.writes() == []
    assert len(api_pods(fake)) == 2


# ---- reads -------------------------------------------------------------------------------


async def test_list_pods_shape_and_selector(fake: FakeKubeAPI, adapter: KubernetesAdapter) -> None:
    everything = await asyncio.to_thread(adapter.list_pods, "prod")
    assert isinstance(everything, ActionOutcome) and everything.request is None
    rows = {row["name"]: row for row in everything.data}
    assert len(rows) == 3
    assert all(set(row) == POD_KEYS for row in rows.values())
    debug = rows["debug"]
    assert debug["owner"] is None and debug["restarts"] == 7
    assert debug["status"] == "CrashLoopBackOff" and debug["ready"] == "0/1"
    api = rows[api_pods(fake)[0]]
    assert api["phase"] == "Running" and api["ready"] == "1/1" and api["node"] == "node-1"
    assert api["owner"].startswith("ReplicaSet/api-")
    assert isinstance(api["age_seconds"], int) and api["age_seconds"] >= 0

    selected = await asyncio.to_thread(adapter.list_pods, "prod", "app=api")
    assert sorted(row["name"] for row in selected.data) == api_pods(fake)
    none = await asyncio.to_thread(adapter.list_pods, "empty")
    assert none.data == []
    with pytest.raises(KubernetesError) as caught:
        await asyncio.to_thread(adapter.list_pods, "prod", "app in (api")
    assert (caught.value.reason, caught.value.status) == ("invalid", 400)


async def test_pod_logs_tail_and_byte_cap_keep_the_end(
    fake: FakeKubeAPI, adapter: KubernetesAdapter
) -> None:
    fake.logs[("prod", "debug")] = [f"line {i:04d} " + "x" * 40 for i in range(1000)]

    tail = await asyncio.to_thread(adapter.pod_logs, "prod", "debug", 3)
    assert tail.data.splitlines() == [f"line {i:04d} " + "x" * 40 for i in (997, 998, 999)]
    assert "truncated" not in tail.summary

    capped = await asyncio.to_thread(adapter.pod_logs, "prod", "debug", 1000, 500)
    first, *rest = capped.data.splitlines()
    assert first.startswith("[… earlier output truncated")
    assert rest[-1].startswith("line 0999") and rest[0].startswith("line 09")
    assert all(line.endswith("x" * 40) for line in rest)  # whole lines only
    assert len(capped.data.encode()) <= 500 + len(first.encode()) + 1
    assert "truncated to 500 bytes" in capped.summary

    with pytest.raises(KubernetesError) as caught:
        await asyncio.to_thread(adapter.pod_logs, "prod", "gone")
    assert caught.value.reason == "not_found"


async def test_events_newest_first(fake: FakeKubeAPI, adapter: KubernetesAdapter) -> None:
    fake.events["prod"].clear()
    fake.add_event(
        "prod",
        kind="Pod",
        name="debug",
        reason="BackOff",
        type="Warning",
        message="Back-off restarting failed container",
        count=12,
        last_seen="2024-05-01T10:00:00Z",
    )
    fake.add_event(
        "prod",
        kind="Deployment",
        name="api",
        reason="ScalingReplicaSet",
        message="Scaled up replica set api-abc to 2",
        last_seen="2024-05-01T11:00:00Z",
    )
    fake.add_event(
        "prod",
        kind="Pod",
        name="debug",
        reason="Pulled",
        message="image pulled",
        last_seen="2024-05-01T09:00:00Z",
    )

    outcome = await asyncio.to_thread(adapter.events, "prod", 2)

    assert outcome.data == [
        {
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "object": "Deployment/api",
            "message": "Scaled up replica set api-abc to 2",
            "count": 1,
            "last_seen": "2024-05-01T11:00:00Z",
        },
        {
            "type": "Warning",
            "reason": "BackOff",
            "object": "Pod/debug",
            "message": "Back-off restarting failed container",
            "count": 12,
            "last_seen": "2024-05-01T10:00:00Z",
        },
    ]
    assert outcome.summary == "2 most recent events in prod (of 3)"


# ---- failures ----------------------------------------------------------------------------


async def test_bad_token_is_unauthorized(fake: FakeKubeAPI, tmp_path: Path) -> None:
    with make_adapter(tmp_path, fake.url, token="stolen") as kube:
        with pytest.raises(KubernetesError) as caught:
            await asyncio.to_thread(kube.list_pods, "prod")
        assert (caught.value.reason, caught.value.transient) == ("unauthorized", False)
        ok, why = await asyncio.to_thread(kube.health)
    assert ok is False and why.startswith("unauthorized")


async def test_closed_port_is_unreachable_and_transient(tmp_path: Path) -> None:
    with make_adapter(tmp_path, f"http://127.0.0.1:{closed_port()}") as kube:
        with pytest.raises(KubernetesError) as caught:
            await asyncio.to_thread(kube.scale, "prod", "api", 3)
        assert (caught.value.reason, caught.value.transient) == ("unreachable", True)
        assert "127.0.0.1" in str(caught.value)
        ok, why = await asyncio.to_thread(kube.health)
    assert ok is False and "unreachable" in why


async def test_slow_server_times_out_without_retrying(fake: FakeKubeAPI, tmp_path: Path) -> None:
    fake.delay = 2.0
    with make_adapter(tmp_path, fake.url, request_timeout=0.2) as kube:
        with pytest.raises(KubernetesError) as caught:
            await asyncio.to_thread(kube.restart_pod, "prod", "debug")
    assert (caught.value.reason, caught.value.transient) == ("timeout", True)
    assert "0.2s" in str(caught.value)
    assert len(fake.requests) == 1  # no hidden retry


@pytest.mark.parametrize(
    ("code", "reason", "transient"),
    [
        (409, "conflict", False),
        (422, "invalid", False),
        (429, "error", True),
        (500, "error", True),
        (503, "error", True),
    ],
)
async def test_status_codes_map_to_reasons(
    fake: FakeKubeAPI, adapter: KubernetesAdapter, code: int, reason: str, transient: bool
) -> None:
    fake.fail_next(1, code, message=f"simulated {code}")

    with pytest.raises(KubernetesError) as caught:
        await asyncio.to_thread(adapter.scale, "prod", "api", 3)

    assert (caught.value.reason, caught.value.transient, caught.value.status) == (
        reason,
        transient,
        code,
    )
    assert f"simulated {code}" in str(caught.value)
    assert len(fake.requests) == 1 and fake.writes() == []
    # The fault was one response: the next call goes through.
    assert (await asyncio.to_thread(adapter.scale, "prod", "api", 3)).data == {"from": 2, "to": 3}


async def test_health(fake: FakeKubeAPI, adapter: KubernetesAdapter) -> None:
    ok, why = await asyncio.to_thread(adapter.health)
    assert ok is True
    assert why == f"Kubernetes v1.31.0-fake at {fake.url}"
    assert [(r.method, r.path.rstrip("/")) for r in fake.requests] == [("GET", "/version")]


# ---- configuration -----------------------------------------------------------------------


async def test_adapters_for_two_clusters_coexist(fake: FakeKubeAPI, tmp_path: Path) -> None:
    default_host = k8s.Configuration.get_default_copy().host
    other = FakeKubeAPI()
    other.add_deployment("staging", "web", replicas=1)
    await other.start()
    try:
        with (
            make_adapter(tmp_path, fake.url) as prod,
            make_adapter(tmp_path, other.url) as staging,
        ):
            a = await asyncio.to_thread(prod.list_pods, "prod")
            b = await asyncio.to_thread(staging.list_pods, "staging")
    finally:
        await other.stop()
    assert len(a.data) == 3 and len(b.data) == 1
    assert k8s.Configuration.get_default_copy().host == default_host  # global untouched


def test_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    with pytest.raises(KubernetesNotConfigured) as caught:
        KubernetesAdapter.from_environment()
    assert "KUBECONFIG unset" in caught.value.reason

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubernetesNotConfigured, match="no such file"):
        KubernetesAdapter.from_environment()

    garbage = tmp_path / "garbage"
    garbage.write_text("clusters: 7\n")
    monkeypatch.setenv("KUBECONFIG", str(garbage))
    with pytest.raises(KubernetesNotConfigured):
        KubernetesAdapter.from_environment()

    write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kc"))
    with KubernetesAdapter.from_environment() as kube:
        assert kube.server == "http://127.0.0.1:1"

    monkeypatch.delenv("KUBECONFIG")
    (tmp_path / ".kube").mkdir()
    write_kubeconfig(tmp_path / ".kube" / "config", "http://127.0.0.1:2")
    with KubernetesAdapter.from_environment() as kube:
        assert kube.server == "http://127.0.0.1:2"


def test_fake_served_from_a_thread_for_synchronous_callers(tmp_path: Path) -> None:
    fake = FakeKubeAPI()
    fake.add_deployment("prod", "api", replicas=3)
    with fake.run_in_thread() as url, make_adapter(tmp_path, url) as kube:
        assert len(kube.list_pods("prod", "app=api").data) == 3
        assert kube.scale("prod", "api", 1).summary == "api: 3 → 1 replicas"


# ---- the fake itself speaks real Status bodies -------------------------------------------


async def test_fake_errors_are_real_status_objects(fake: FakeKubeAPI) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(base_url=fake.url) as http:
        async with http.get("/api/v1/namespaces/prod/pods/x", headers=auth) as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": 'pods "x" not found',
                "reason": "NotFound",
                "details": {"name": "x", "kind": "pods"},
                "code": 404,
            }
        async with http.get("/api/v1/namespaces/prod/pods/x") as resp:
            assert resp.status == 401 and (await resp.json())["reason"] == "Unauthorized"
        async with http.patch(
            "/apis/apps/v1/namespaces/prod/deployments/api/scale",
            json={"spec": {"replicas": -1}},
            headers={**auth, "Content-Type": STRATEGIC},
        ) as resp:
            body = await resp.json()
            assert resp.status == 422 and body["reason"] == "Invalid"
            assert "spec.replicas: Invalid value: -1" in body["message"]
        async with http.get(
            "/apis/apps/v1/namespaces/prod/deployments/api/scale", headers=auth
        ) as resp:
            scale = await resp.json()
            assert (scale["kind"], scale["apiVersion"]) == ("Scale", "autoscaling/v1")
            assert scale["status"] == {"replicas": 2, "selector": "app=api"}
