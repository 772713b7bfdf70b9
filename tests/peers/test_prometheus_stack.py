"""The Prometheus / Alertmanager harness against a bare aiohttp webhook receiver."""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.peers import prometheus_stack
from tests.peers.prometheus_stack import (
    ZERO_TIME,
    Alertmanager,
    Prometheus,
    alert_rule,
    free_port,
    wait_for,
)

# The harness's fixtures (tests/conftest.py may import them for everyone; harmless twice).
alertmanager_factory = prometheus_stack.alertmanager_factory
prometheus_factory = prometheus_stack.prometheus_factory

RECORDED_PAYLOAD = Path(__file__).parent.parent / "data" / "alertmanager_webhook.json"
FINGERPRINT = re.compile(r"^[0-9a-f]{16}$")
# Deadlines only keep a broken run from hanging; nothing here asserts on timing.
FAST_DEADLINE = 10.0
PROMETHEUS_DEADLINE = 30.0


@dataclass
class Delivery:
    authorization: str | None
    payload: dict[str, Any]


@dataclass
class WebhookRecorder:
    """A bare webhook receiver on 127.0.0.1 that records every POST /alerts."""

    port: int = field(default_factory=free_port)
    deliveries: list[Delivery] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    async def _receive(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.deliveries.append(Delivery(request.headers.get("Authorization"), payload))
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def with_status(self, status: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.payload["status"] == status]


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookRecorder]:
    recorder = WebhookRecorder()
    await recorder.start()
    try:
        yield recorder
    finally:
        await recorder.stop()


async def serve_metrics(port: int, text: str) -> web.AppRunner:
    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(text=text)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def assert_v4(payload: dict[str, Any], status: str, am: Alertmanager) -> None:
    assert payload["version"] == "4"
    assert payload["status"] == status
    assert payload["receiver"] == am.receiver
    assert payload["externalURL"] == am.url
    assert payload["truncatedAlerts"] == 0
    for alert in payload["alerts"]:
        assert alert["status"] == status
        assert FINGERPRINT.match(alert["fingerprint"]), alert
        if status == "firing":
            assert alert["endsAt"] == ZERO_TIME
        else:
            assert alert["endsAt"] != ZERO_TIME
            assert alert["endsAt"] >= alert["startsAt"]


@pytest.mark.integration
async def test_fast_path_bearer_firing_then_resolved(
    webhook: WebhookRecorder, alertmanager_factory: Callable[..., Alertmanager]
) -> None:
    am = alertmanager_factory(webhook.url, token="s3cret-token")
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "checkout-1"}
    am.post_alerts([{"labels": labels, "annotations": {"summary": "Pod is crash looping."}}])

    (firing,) = await wait_for(
        lambda: webhook.with_status("firing"), within=FAST_DEADLINE, what="firing", peers=[am]
    )
    assert firing.authorization == "Bearer s3cret-token"
    assert_v4(firing.payload, "firing", am)
    (alert,) = firing.payload["alerts"]
    assert alert["labels"] == labels
    assert alert["annotations"] == {"summary": "Pod is crash looping."}
    # group_by ['...']: the group is the alert's whole label set.
    assert firing.payload["groupLabels"] == labels

    am.resolve(labels)
    resolved = await wait_for(
        lambda: webhook.with_status("resolved"), within=FAST_DEADLINE, what="resolved", peers=[am]
    )
    assert resolved[0].authorization == "Bearer s3cret-token"
    assert_v4(resolved[0].payload, "resolved", am)
    (gone,) = resolved[0].payload["alerts"]
    assert gone["fingerprint"] == alert["fingerprint"]
    assert gone["startsAt"] == alert["startsAt"]
    assert gone["annotations"] == alert["annotations"]  # resolve() re-sends them


@pytest.mark.integration
async def test_basic_auth(
    webhook: WebhookRecorder, alertmanager_factory: Callable[..., Alertmanager]
) -> None:
    am = alertmanager_factory(webhook.url, basic_auth=("alertmanager", "pa:ss wörd"))
    am.post_alerts([{"labels": {"alertname": "Basic"}}])
    (delivery,) = await wait_for(
        lambda: webhook.deliveries, within=FAST_DEADLINE, what="a webhook", peers=[am]
    )
    expected = base64.b64encode("alertmanager:pa:ss wörd".encode()).decode()
    assert delivery.authorization == f"Basic {expected}"
    assert_v4(delivery.payload, "firing", am)


@pytest.mark.integration
async def test_no_credentials_no_authorization_header(
    webhook: WebhookRecorder, alertmanager_factory: Callable[..., Alertmanager]
) -> None:
    am = alertmanager_factory(webhook.url)
    am.post_alerts([{"labels": {"alertname": "Anonymous"}}])
    (delivery,) = await wait_for(
        lambda: webhook.deliveries, within=FAST_DEADLINE, what="a webhook", peers=[am]
    )
    assert delivery.authorization is None


@pytest.mark.integration
async def test_grouped_alerts_match_the_recorded_payload(
    webhook: WebhookRecorder, alertmanager_factory: Callable[..., Alertmanager]
) -> None:
    """A live grouped notification has the recorded payload's shape (guards the test data)."""
    recorded = json.loads(RECORDED_PAYLOAD.read_text())
    am = alertmanager_factory(webhook.url, group_by=("alertname", "namespace"), group_wait="1s")
    am.post_alerts(
        [
            {"labels": alert["labels"], "annotations": alert["annotations"]}
            for alert in recorded["alerts"]
        ]
    )
    (delivery,) = await wait_for(
        lambda: webhook.deliveries, within=FAST_DEADLINE, what="a webhook", peers=[am]
    )
    live = delivery.payload
    assert_v4(live, "firing", am)
    assert recorded["version"] == "4"
    assert recorded["status"] == "firing"
    assert set(live) == set(recorded)
    assert len(live["alerts"]) == len(recorded["alerts"]) == 2

    def by_fingerprint(payload: dict[str, Any]) -> list[dict[str, Any]]:
        return sorted(payload["alerts"], key=lambda alert: alert["fingerprint"])

    for live_alert, recorded_alert in zip(
        by_fingerprint(live), by_fingerprint(recorded), strict=True
    ):
        assert recorded_alert["endsAt"] == ZERO_TIME
        assert set(live_alert) == set(recorded_alert)
        assert live_alert["labels"] == recorded_alert["labels"]
        # Same labels, same fingerprint, whichever process computed it.
        assert live_alert["fingerprint"] == recorded_alert["fingerprint"]
    for key in ("groupLabels", "commonLabels", "commonAnnotations", "groupKey", "version"):
        assert live[key] == recorded[key], key


@pytest.mark.integration
@pytest.mark.slow
async def test_prometheus_rule_fires_and_resolves(
    webhook: WebhookRecorder,
    alertmanager_factory: Callable[..., Alertmanager],
    prometheus_factory: Callable[..., Prometheus],
) -> None:
    am = alertmanager_factory(webhook.url, token="s3cret-token")
    target_port = free_port()  # nothing listens here yet, so up == 0
    prom = prometheus_factory(
        rules=alert_rule(
            "TargetDown",
            'up{job="missing"} == 0',
            labels={"severity": "critical"},
            annotations={"summary": "{{ $labels.instance }} is down"},
        ),
        alertmanager=am,
        scrape={"missing": f"127.0.0.1:{target_port}"},
    )
    peers = [am, prom]

    (firing,) = await wait_for(
        lambda: webhook.with_status("firing"),
        within=PROMETHEUS_DEADLINE,
        what="the TargetDown webhook",
        peers=peers,
    )
    assert firing.authorization == "Bearer s3cret-token"
    assert_v4(firing.payload, "firing", am)
    (alert,) = firing.payload["alerts"]
    assert alert["labels"] == {
        "alertname": "TargetDown",
        "instance": f"127.0.0.1:{target_port}",
        "job": "missing",
        "severity": "critical",
    }
    assert alert["annotations"] == {"summary": f"127.0.0.1:{target_port} is down"}
    assert alert["generatorURL"].startswith(f"{prom.url}/graph?g0.expr=")
    assert [a["labels"]["alertname"] for a in prom.alerts()] == ["TargetDown"]

    metrics = await serve_metrics(target_port, "# the target is back\n")
    try:
        resolved = await wait_for(
            lambda: webhook.with_status("resolved"),
            within=PROMETHEUS_DEADLINE,
            what="the resolved TargetDown webhook",
            peers=peers,
        )
    finally:
        await metrics.cleanup()
    assert_v4(resolved[0].payload, "resolved", am)
    assert resolved[0].payload["alerts"][0]["fingerprint"] == alert["fingerprint"]
    assert prom.query('up{job="missing"}')[0]["value"][1] == "1"


@pytest.mark.integration
def test_a_bad_config_fails_with_the_log_tail(tmp_path: Path) -> None:
    am = Alertmanager("http://127.0.0.1:9/alerts", group_interval="0s", workdir=tmp_path)
    with pytest.raises(RuntimeError, match="exited with") as failure:
        am.start()
    assert "group_interval cannot be zero" in str(failure.value)
    assert not am.running


def test_missing_binary_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        Prometheus()
