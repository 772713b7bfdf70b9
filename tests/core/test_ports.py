"""The ports: core loads no integration library until an integration is used, reaches each
adapter through a typed accessor, and sees adapter errors as one IntegrationError."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.execution.integrations import Integrations
from core.ports import ADAPTERS, IntegrationError, NotConfigured, Outcome
from tests.conftest import make_settings
from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION_LIBRARIES = ("kubernetes", "pyVmomi", "pyVim", "adapters")

IMPORT_CORE = """
import sys
import core.commands, core.runtime, core.ports, core.health
import core.execution.actions, core.execution.executor, core.execution.integrations
import core.execution.job, core.execution.worker
import bot.cli, bot.http.app
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {libraries!r})
print(",".join(loaded))
"""


def test_importing_core_loads_no_integration_library(tmp_path: Path) -> None:
    """In a fresh interpreter, as the CLI starts: no Kubernetes client, no pyVmomi, and no
    adapter module at all."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBE", "VSPHERE_", "INFRAAI_", "DATABASE_", "REDIS_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    code = IMPORT_CORE.format(libraries=set(INTEGRATION_LIBRARIES))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_every_adapter_in_the_table_resolves() -> None:
    for name, spec in ADAPTERS.items():
        module = spec.load()
        assert isinstance(getattr(module, spec.adapter), type), name
        assert spec.loaded_errors(), name
        assert issubclass(getattr(module, spec.not_configured), Exception), name


def test_an_unconfigured_integration_says_why_and_what_is_safe_to_show(tmp_path: Path) -> None:
    integrations = Integrations(
        make_settings("sqlite://", kubeconfig=str(tmp_path / "missing" / "kubeconfig"))
    )
    with pytest.raises(NotConfigured) as vsphere:
        integrations.vsphere()
    assert str(vsphere.value) == "vSphere is not configured: VSPHERE_HOST is unset"
    with pytest.raises(NotConfigured) as kubernetes:
        integrations.kubernetes()
    assert str(tmp_path) in str(kubernetes.value)  # operators see the path
    assert str(tmp_path) not in kubernetes.value.public  # HTTP clients do not
    health = integrations.health("kubernetes")
    assert (health.state, health.public) == ("not configured", kubernetes.value.public)


async def test_adapter_errors_arrive_as_integration_errors(tmp_path: Path) -> None:
    fake = FakeKubeAPI()
    await fake.start()
    fake.fail_next(1, code=503)
    integrations = Integrations(
        make_settings("sqlite://", kubeconfig=str(write_kubeconfig(tmp_path / "kc", fake.url)))
    )
    try:
        k8s = integrations.kubernetes()
        with pytest.raises(IntegrationError) as transient, integrations.faults():
            await integrations.run(k8s.list_pods, "prod")
        assert (transient.value.integration, transient.value.transient) == ("kubernetes", True)
        with pytest.raises(IntegrationError) as missing, integrations.faults():
            await integrations.run(k8s.restart_pod, "prod", "gone")
        assert (missing.value.reason, missing.value.transient) == ("not_found", False)
        assert str(missing.value) == "pod prod/gone not found"
        with pytest.raises(ZeroDivisionError), integrations.faults():
            _ = 1 / 0  # not an adapter's error: passes through untouched
    finally:
        await fake.stop()
        integrations.close()


async def test_adapter_calls_run_on_their_own_threads() -> None:
    """Not on the loop's default executor, which the critical path (policy reloads, RQ
    enqueues) needs free."""
    integrations = Integrations(make_settings("sqlite://"))
    try:
        name = await integrations.run(lambda: threading.current_thread().name)
        assert name.startswith("adapter")
    finally:
        integrations.close()


def test_an_adapter_outcome_becomes_an_immutable_outcome() -> None:
    from adapters.kubernetes import ActionOutcome

    outcome = Outcome.of(ActionOutcome("deleted pod prod/api-1", "DELETE …", {"pod": "api-1"}))
    assert outcome == Outcome("deleted pod prod/api-1", "DELETE …", {"pod": "api-1"}, False)
    with pytest.raises(AttributeError):
        outcome.summary = "changed"  # type: ignore[misc]
