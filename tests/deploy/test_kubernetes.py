"""deploy/kubernetes/, validated offline against the Kubernetes API schemas, and its RBAC
checked against what the actions really send: every Kubernetes action of the catalogue is
run through the worker's code path against the fake API server, each request is turned into
the (API group, resource, verb) the API server would authorize, and the Roles must grant
exactly that set — the worker all of it, the internet-facing bot only the read actions'."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.actions.catalogue import CATALOGUE
from core.execution.actions import Limits, run_action
from core.execution.integrations import Integrations
from tests.conftest import make_settings
from tests.deploy.tools import ROOT
from tests.execution_helpers import owned_pod
from tests.fakes.kube_api import FakeKubeAPI, RecordedRequest, write_kubeconfig

# The oldest Kubernetes release these manifests claim, and the newest whose schemas the
# pinned kubernetes-validate (pyproject.toml) carries.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
KUBE = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBE.rglob("*.yaml"))
IMAGE_UID = 10001  # Dockerfile: USER 10001:10001

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) → object, over every file (the secret template included)."""
    return {(d["kind"], d["metadata"]["name"]): d for p in MANIFESTS for d in documents(p)}


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for (kind, name), obj in objects().items():
        if kind in ("Deployment", "Job"):
            yield name, obj["spec"]["template"]["spec"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(KUBE)))
def test_every_manifest_is_valid_for_the_pinned_kubernetes_versions(
    path: Path, version: str
) -> None:
    for document in documents(path):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_refuses_a_misspelt_field() -> None:
    """The check above has teeth: strict validation refuses what the API server would drop."""
    bot = copy.deepcopy(objects()[("Deployment", "infraai-bot")])
    bot["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bot, KUBERNETES_VERSIONS[-1], strict=True)


# ---- RBAC: what the actions need --------------------------------------------------------


def authorization(request: RecordedRequest) -> Grant:
    """The RBAC attributes the API server derives from a request (its RequestInfo)."""
    parts = [p for p in request.path.split("/") if p]
    if parts[0] == "api":  # /api/v1/…: the core group ""
        group, rest = "", parts[2:]
    elif parts[0] == "apis":  # /apis/<group>/<version>/…
        group, rest = parts[1], parts[3:]
    else:
        return ("nonResourceURL", request.path, request.method.lower())
    assert rest[0] == "namespaces", f"a cluster-wide request: {request.path}"
    resource, named = rest[2], len(rest) > 3
    if len(rest) > 4:
        resource += "/" + rest[4]  # a subresource: pods/log, deployments/scale
    verbs = {"GET": "get" if named else "list", "DELETE": "delete", "PATCH": "patch"}
    return (group, resource, verbs[request.method])


def sample_params() -> dict[str, dict[str, Any]]:
    """Params for each Kubernetes action, naming objects the fake holds (and a replica count
    the deployment does not have yet, so that k8s.scale writes). In the order they run: the
    pod is read before restart_pod deletes it."""
    pod = "web-1"  # owned by a ReplicaSet no deployment of the fake rolls
    return {
        "k8s.list_pods": {"namespace": "prod", "selector": "app=api"},
        "k8s.pod_logs": {"namespace": "prod", "pod": pod, "tail": 10},
        "k8s.events": {"namespace": "prod"},
        "k8s.rollout_restart": {"namespace": "prod", "deployment": "api"},
        "k8s.scale": {"namespace": "prod", "deployment": "api", "replicas": 3},
        "k8s.restart_pod": {"namespace": "prod", "pod": pod},
    }


@pytest.fixture(scope="module")
def needed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[Grant]]:
    """Action name → the grants its requests need, from running it for real (not dry)."""
    fake = FakeKubeAPI()
    fake.add_deployment("prod", "api", replicas=2)
    owned_pod(fake, "prod", "web-1")
    kubeconfig = tmp_path_factory.mktemp("kube") / "kubeconfig"
    grants: dict[str, set[Grant]] = {}
    with fake.run_in_thread() as url:
        write_kubeconfig(kubeconfig, url)
        settings = make_settings("sqlite+aiosqlite:///:memory:", kubeconfig=str(kubeconfig))
        integrations = Integrations(settings)
        params = sample_params()
        kube_actions = {name for name in CATALOGUE if name.startswith("k8s.")}
        assert set(params) == kube_actions, "a new Kubernetes action needs sample params here"
        for name, raw in params.items():
            before = len(fake.requests)
            spec = CATALOGUE[name]
            run_action(integrations, name, spec.validate(raw), dry_run=False, limits=Limits(20))
            grants[name] = {authorization(r) for r in fake.requests[before:]}
        before = len(fake.requests)
        assert integrations.health("kubernetes").state == "ok"
        grants["health"] = {authorization(r) for r in fake.requests[before:]}
        integrations.close()
    return grants


def role_grants(name: str) -> set[Grant]:
    role = objects()[("Role", name)]
    grants = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames, no URLs"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb)
                    grants.add((group, resource, verb))
    return grants


def test_the_actions_need_exactly_the_documented_grants(needed: dict[str, set[Grant]]) -> None:
    """Pins the derivation itself: if an action starts sending other requests, this fails
    first, with the difference, before the Role comparisons below."""
    assert needed == {
        "k8s.restart_pod": {("", "pods", "get"), ("", "pods", "delete")},
        "k8s.rollout_restart": {("apps", "deployments", "get"), ("apps", "deployments", "patch")},
        "k8s.scale": {("apps", "deployments/scale", "get"), ("apps", "deployments/scale", "patch")},
        "k8s.list_pods": {("", "pods", "list")},
        "k8s.pod_logs": {("", "pods", "get"), ("", "pods/log", "get")},
        "k8s.events": {("", "events", "list")},
        # Open to every authenticated client (system:public-info-viewer): no grant needed.
        "health": {("nonResourceURL", "/version/", "get")},
    }


def test_the_worker_role_grants_exactly_what_the_actions_need(
    needed: dict[str, set[Grant]],
) -> None:
    actions = set().union(*(g for name, g in needed.items() if name in CATALOGUE))
    assert role_grants("infraai-worker") == actions


def test_the_bot_role_grants_exactly_what_the_read_actions_need(
    needed: dict[str, set[Grant]],
) -> None:
    reads = set().union(
        *(g for name, g in needed.items() if name in CATALOGUE and CATALOGUE[name].risk == "read")
    )
    assert role_grants("infraai-bot") == reads
    assert not {verb for _, _, verb in reads} - {"get", "list"}


def test_each_role_is_bound_to_its_own_service_account_and_used_by_its_pods() -> None:
    every = objects()
    specs = dict(pod_specs())
    for name in ("infraai-bot", "infraai-worker"):
        binding = every[("RoleBinding", name)]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name, "namespace": "infraai"}
        ]
        assert ("ServiceAccount", name) in every
        assert specs[name]["serviceAccountName"] == name
        # Applied with `kubectl apply -n <target>`: the file must not pin a namespace.
        assert "namespace" not in every[("Role", name)]["metadata"]
    assert specs["infraai-migrate"]["automountServiceAccountToken"] is False
    assert not {kind for kind, _ in every} & {"ClusterRole", "ClusterRoleBinding"}


# ---- the pods ---------------------------------------------------------------------------


def test_every_pod_runs_as_the_images_user_on_a_read_only_root() -> None:
    for name, spec in pod_specs():
        pod = spec["securityContext"]
        assert (pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"]) == (
            True,
            IMAGE_UID,
            IMAGE_UID,
        ), name
        # A Service named "infraai" would inject INFRAAI_PORT=tcp://…, InfraAI's own setting.
        assert spec["enableServiceLinks"] is False, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, name  # the only scratch space on a read-only root


def test_the_bot_is_probed_on_healthz_and_readyz_at_the_port_it_listens_on() -> None:
    [bot] = dict(pod_specs())["infraai-bot"]["containers"]
    env = {e["name"]: e.get("value") for e in bot["env"]}
    [port] = bot["ports"]
    assert port == {"name": "http", "containerPort": int(env["INFRAAI_PORT"])}
    assert bot["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert bot["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert bot["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = objects()[("Service", "infraai")]["spec"]
    assert service["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]


def test_the_worker_is_probed_through_its_rq_registration() -> None:
    [worker] = dict(pod_specs())["infraai-worker"]["containers"]
    assert worker["args"] == ["worker"]
    assert worker["livenessProbe"]["exec"]["command"] == ["docker-healthcheck", "worker"]


def test_services_and_disruption_budgets_select_the_pods_they_mean() -> None:
    every = objects()
    labels = {
        name: every[("Deployment", name)]["spec"]["template"]["metadata"]["labels"]
        for name in ("infraai-bot", "infraai-worker")
    }
    assert every[("Service", "infraai")]["spec"]["selector"] == labels["infraai-bot"]
    for name in ("infraai-bot", "infraai-worker"):
        budget = every[("PodDisruptionBudget", name)]["spec"]
        assert budget["selector"]["matchLabels"] == labels[name]
        assert budget["minAvailable"] < every[("Deployment", name)]["spec"]["replicas"]


def test_the_secret_template_holds_every_key_the_pods_require() -> None:
    template = documents(KUBE / "templates" / "secret.yaml")[0]["stringData"]
    assert all("REPLACE" in v or "example" in v for v in template.values()), "placeholders only"
    for name, spec in pod_specs():
        for container in spec["containers"]:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["name"] == "infraai" and ref["key"] in template, (name, ref)


def test_the_policies_config_map_is_the_example_policies() -> None:
    policies = objects()[("ConfigMap", "infraai-policies")]["data"]["policies.yaml"]
    assert policies == (ROOT / "examples" / "policies.yaml").read_text()


def test_applying_the_directory_never_touches_the_secret_or_another_namespace() -> None:
    """`kubectl apply -f deploy/kubernetes/` reads the top level only: the secret template
    (placeholders) and the per-namespace Roles (applied with `-n`) must live below it."""
    top = [d for p in sorted(KUBE.glob("*.yaml")) for d in documents(p)]
    assert not {d["kind"] for d in top} & {"Secret", "Role", "RoleBinding"}
    namespaced = [d for d in top if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"infraai"}
