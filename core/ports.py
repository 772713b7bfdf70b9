"""Ports: what core needs of each outside system, typed, with its adapter loaded only on use.

Core never imports an integration library: pyVmomi and the Kubernetes client cost a second
or more to import, and the CLI, the policy commands and the webhook need neither. Each
integration is a `Protocol` here; `ADAPTERS` names the module that implements it as a
dotted path, imported the first time the integration is used (rq's serializers table is the
model). mypy checks every adapter against its port (the `TYPE_CHECKING` block at the end),
so a renamed method or a changed signature fails the lint, not a job at 3 a.m.

Adapters import nothing of ours (they sit at the bottom of the layering), so they keep their
own outcome and error classes. This module says what core relies on of them:

* an outcome has `summary`, `request`, `data`, `dry_run` (`AdapterOutcome`); core keeps it
  as an immutable `Outcome`;
* an error has a one-line message, a `transient` flag and a `reason`; at the port it
  becomes an `IntegrationError`, the one error type core handles (transient → the job's
  bounded retries);
* an integration that is not set up raises its "not configured" exception when built;
  core turns it into `NotConfigured`, and the integration is reported as off, not failing.

A new integration (Grafana, nmap, …) is a Protocol here, a row in
`ADAPTERS`, a typed accessor on `core.execution.integrations.Integrations`, and its module
in `adapters/`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol

State = Literal["ok", "not configured", "failing"]


# ---- outcome, error, health ------------------------------------------------------------


class AdapterOutcome(Protocol):
    """What every adapter action returns (each adapter has its own class of this shape)."""

    @property
    def summary(self) -> str: ...
    @property
    def request(self) -> str | None: ...
    @property
    def data(self) -> Any: ...
    @property
    def dry_run(self) -> bool: ...


@dataclass(frozen=True)
class Outcome:
    """What an action did, or in a dry run would do. `request` is the exact write sent (or
    that would be sent): the audit trail and shadow mode show it; None for reads."""

    summary: str
    request: str | None
    data: Any = None
    dry_run: bool = False

    @classmethod
    def of(cls, outcome: AdapterOutcome) -> Outcome:
        return cls(outcome.summary, outcome.request, outcome.data, outcome.dry_run)


class IntegrationError(Exception):
    """An integration's call failed; `str(err)` is one line meant for the person who asked.

    `transient`: trying again later could succeed (unreachable, timed out, 5xx). `reason` is
    the adapter's own short classification (`not_found`, `timeout`, …), kept for logs.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        reason: str = "error",
        integration: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.reason = reason
        self.integration = integration


class NotConfigured(Exception):
    """The integration is not set up. `str()` says why, for operators (it may name paths or
    hosts); `public` says it without them, for unauthenticated HTTP clients."""

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


@dataclass(frozen=True)
class Health:
    """One dependency's state. `detail` is for operators (chat, logs): it may name hosts.
    `public` is what an unauthenticated HTTP client may read (`/readyz`)."""

    name: str
    state: State
    detail: str
    public: str = ""

    def public_detail(self) -> str:
        return self.public or self.state


# ---- the ports ---------------------------------------------------------------------------


class Integration(Protocol):
    """What every adapter offers besides its own calls."""

    def health(self) -> tuple[bool, str]:
        """(ok, one line). Cheap, synchronous, and never raises."""
        ...

    def close(self) -> None:
        """Release connections and sessions."""
        ...


class KubernetesPort(Integration, Protocol):
    """One cluster. Names are validated by the adapter before any request."""

    def restart_pod(self, namespace: str, pod: str, *, dry_run: bool = False) -> AdapterOutcome: ...

    def rollout_restart(
        self, namespace: str, deployment: str, *, dry_run: bool = False, now: datetime | None = None
    ) -> AdapterOutcome: ...

    def scale(
        self, namespace: str, deployment: str, replicas: int, *, dry_run: bool = False
    ) -> AdapterOutcome: ...

    def list_pods(self, namespace: str, selector: str | None = None) -> AdapterOutcome: ...

    def pod_logs(
        self,
        namespace: str,
        pod: str,
        tail: int = 100,
        max_bytes: int = 64_000,
        *,
        container: str | None = None,
        previous: bool = False,
    ) -> AdapterOutcome: ...

    def events(self, namespace: str, limit: int = 50) -> AdapterOutcome: ...


class VSpherePort(Integration, Protocol):
    """One vCenter or ESXi host; VMs are named, as people and alerts name them."""

    def reset_vm(self, vm: str, *, dry_run: bool = False) -> AdapterOutcome: ...
    def reboot_guest(self, vm: str, *, dry_run: bool = False) -> AdapterOutcome: ...
    def power_on(self, vm: str, *, dry_run: bool = False) -> AdapterOutcome: ...
    def power_off(self, vm: str, *, dry_run: bool = False) -> AdapterOutcome: ...
    def list_vms(self) -> AdapterOutcome: ...


class OllamaPort(Integration, Protocol):
    """The chat model's server; the assistant's model comes from here."""

    def chat_model(self, *, num_ctx: int, timeout: float) -> Any:
        """A LangChain chat model bound to the configured model (num_ctx always sent)."""
        ...


# ---- Grafana (issue 9) ---------------------------------------------------------------


class GrafanaPort(Integration, Protocol):
    """One Grafana, read only. `data`: dashboards as dicts (uid, title, folder, tags, url);
    a dashboard with its panels (id, title, type, url); a panel's PNG bytes, or None when
    Grafana has no image renderer."""

    def search_dashboards(self, query: str = "", limit: int = 100) -> AdapterOutcome: ...
    def dashboard(self, uid: str) -> AdapterOutcome: ...

    def render_panel(
        self,
        uid: str,
        panel_id: int,
        *,
        slug: str = "",
        width: int = 1000,
        height: int = 500,
        time_from: str = "now-6h",
        time_to: str = "now",
    ) -> AdapterOutcome: ...


# ---- Prometheus (issue 9) ----------------------------------------------------------------


class PrometheusPort(Integration, Protocol):
    """One Prometheus server's HTTP API. Queries are async (aiohttp): await them on the loop,
    not through `Integrations.run`. `data` of an outcome is the API's `data` member."""

    async def query(self, expr: str, at: datetime | None = None) -> AdapterOutcome: ...

    async def query_range(
        self,
        expr: str,
        start: datetime,
        end: datetime,
        step_seconds: float,
    ) -> AdapterOutcome: ...


# ---- nmap (discovery) ----


class NmapPort(Integration, Protocol):
    """The nmap binary. Addresses are IPs the caller has checked against the allowed ranges
    (the adapter checks they are addresses again); ports in nmap's list syntax."""

    def scan(
        self, addresses: Sequence[str], ports: str | None = None, *, services: bool = False
    ) -> AdapterOutcome: ...


# ---- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AdapterSpec:
    """Where an integration's adapter lives, by name only (nothing is imported until used)."""

    title: str  # as people read it: "Kubernetes"
    module: str  # dotted path of the adapter module
    adapter: str  # the class implementing the port
    errors: tuple[str, ...]  # its error classes (`transient`, `reason`): IntegrationError
    not_configured: str  # its "not set up" exception: NotConfigured

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def loaded_errors(self) -> tuple[type[BaseException], ...]:
        """The adapter's error classes if its module is loaded (if not, none can be raised)."""
        module = sys.modules.get(self.module)
        if module is None:
            return ()
        return tuple(getattr(module, name) for name in self.errors)


ADAPTERS: dict[str, AdapterSpec] = {
    "kubernetes": AdapterSpec(
        title="Kubernetes",
        module="adapters.kubernetes",
        adapter="KubernetesAdapter",
        errors=("KubernetesError",),
        not_configured="KubernetesNotConfigured",
    ),
    "vsphere": AdapterSpec(
        title="vSphere",
        module="adapters.vsphere",
        adapter="VSphereAdapter",
        errors=("VSphereError",),
        not_configured="VSphereNotConfigured",
    ),
    "ollama": AdapterSpec(
        title="Ollama",
        module="adapters.ollama",
        adapter="OllamaAdapter",
        errors=("OllamaError",),
        not_configured="OllamaNotConfigured",
    ),
    # ---- Grafana (issue 9)
    "grafana": AdapterSpec(
        title="Grafana",
        module="adapters.grafana",
        adapter="GrafanaAdapter",
        errors=("GrafanaError",),
        not_configured="GrafanaNotConfigured",
    ),
    "prometheus": AdapterSpec(
        title="Prometheus",
        module="adapters.prometheus",
        adapter="PrometheusAdapter",
        errors=("PrometheusError",),
        not_configured="PrometheusNotConfigured",
    ),
    "nmap": AdapterSpec(
        title="nmap",
        module="adapters.nmap",
        adapter="NmapAdapter",
        errors=("NmapError",),
        not_configured="NmapNotConfigured",
    ),
}


def integration_error(exc: BaseException) -> IntegrationError | None:
    """`exc` as an IntegrationError if an adapter raised it as one of its errors, else None."""
    for name, spec in ADAPTERS.items():
        if isinstance(exc, spec.loaded_errors()):
            return IntegrationError(
                str(exc),
                transient=bool(getattr(exc, "transient", False)),
                reason=str(getattr(exc, "reason", "error")),
                integration=name,
            )
    return None


if TYPE_CHECKING:  # mypy holds each adapter to its port; nothing here runs
    from adapters.kubernetes import KubernetesAdapter
    from adapters.ollama import OllamaAdapter
    from adapters.prometheus import PrometheusAdapter
    from adapters.vsphere import VSphereAdapter

    _kubernetes: type[KubernetesPort] = KubernetesAdapter
    _vsphere: type[VSpherePort] = VSphereAdapter
    _ollama: type[OllamaPort] = OllamaAdapter

    # ---- Grafana (issue 9)
    from adapters.grafana import GrafanaAdapter

    _grafana: type[GrafanaPort] = GrafanaAdapter
    _prometheus: type[PrometheusPort] = PrometheusAdapter


if TYPE_CHECKING:
    from adapters.nmap import NmapAdapter

    _nmap: type[NmapPort] = NmapAdapter
