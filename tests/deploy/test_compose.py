"""docker-compose.yml and deploy/compose/, validated offline: Debian's docker-compose parses
the file, promtool and amtool accept the Prometheus and Alertmanager configs, and the wiring
holds — Alertmanager posts to the bot's /alerts with the bot's token, and the example alert
matches an example policy, so `docker compose up` shows an alert becoming a proposal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import Settings
from core.policy.engine import PolicySet
from core.policy.store import load_document
from core.policy.testing import AlertUnderTest, describe_test
from tests.deploy.tools import ROOT, run_tool

COMPOSE = ROOT / "deploy" / "compose"
INFRAAI = ("migrate", "serve", "worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The file as Compose resolves it (anchors merged, paths absolute)."""
    result = run_tool("docker-compose", "-f", "docker-compose.yml", "config")
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Bind mounts as target → source, in Compose v1's short form or v2's long form."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *_mode = volume.split(":")
        else:
            source, target = volume["source"], volume["target"]
        found[target] = Path(source)
    return found


def test_docker_compose_accepts_the_file_quietly() -> None:
    result = run_tool("docker-compose", "-f", "docker-compose.yml", "config", "-q")
    assert (result.returncode, result.stderr) == (0, "")


def test_the_stack_runs_migrate_once_before_the_bot_and_two_workers(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "prometheus", "alertmanager", *INFRAAI}
    assert {services[s]["image"] for s in INFRAAI} == {"infraai:local"}
    assert [services[s]["command"] for s in INFRAAI] == [
        ["migrate"],
        ["serve"],
        ["worker"],
        ["worker"],
    ]
    migrate = services["migrate"]
    assert migrate["restart"] == "no"  # a one-shot: restarting it would hold the rest back
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("serve", "worker-1", "worker-2"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    for name in INFRAAI:
        assert services[name]["read_only"] is True


def test_alertmanager_posts_to_the_bots_alerts_with_its_token(compose: dict[str, Any]) -> None:
    serve = compose["services"]["serve"]["environment"]
    port = serve.get("INFRAAI_PORT", Settings.model_fields["infraai_port"].default)
    [receiver] = load(COMPOSE / "alertmanager.yml")["receivers"]
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"] == f"http://serve:{port}/alerts"
    assert webhook["send_resolved"] is True  # resolved alerts close their proposals
    assert webhook["http_config"]["authorization"] == {
        "type": "Bearer",
        "credentials": serve["ALERTS_TOKEN"],
    }


def test_promtool_accepts_the_prometheus_config_and_its_rules() -> None:
    result = run_tool("promtool", "check", "config", str(COMPOSE / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rules found" in result.stdout


def test_amtool_accepts_the_alertmanager_config() -> None:
    result = run_tool("amtool", "check-config", str(COMPOSE / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_bot_and_sends_to_alertmanager(compose: dict[str, Any]) -> None:
    config = load(COMPOSE / "prometheus.yml")
    [scrape] = config["scrape_configs"]
    assert scrape["static_configs"] == [{"targets": ["serve:8080"]}]
    [target] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert target == "alertmanager:9093"
    assert mounts(compose["services"]["prometheus"]) == {
        "/etc/prometheus/prometheus.yml": COMPOSE / "prometheus.yml",
        "/etc/prometheus/alert-rules.yml": COMPOSE / "alert-rules.yml",
    }


def test_the_example_alert_becomes_a_proposal_of_the_policies_serve_loads(
    compose: dict[str, Any],
) -> None:
    serve = compose["services"]["serve"]
    source = mounts(serve)[serve["environment"]["INFRAAI_POLICIES"]]
    policies = PolicySet(load_document(source.read_text()))
    rules = [r for g in load(COMPOSE / "alert-rules.yml")["groups"] for r in g["rules"]]
    [demo] = [r for r in rules if r["alert"] == "KubePodCrashLooping"]
    assert demo["expr"] == "vector(1)"  # fires at once, with exactly the rule's labels
    labels = {"alertname": demo["alert"], **demo["labels"]}

    [decision, *_] = describe_test(policies, AlertUnderTest(labels)).decisions
    assert decision.error is None
    assert (decision.action.name, decision.params_dict) == (
        "k8s.restart_pod",
        {"namespace": "demo", "pod": "web-5d4f8b7c9a-x2k9q"},
    )
