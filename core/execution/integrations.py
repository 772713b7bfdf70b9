"""The outside systems InfraAI acts on, built lazily from settings through the ports.

An integration that is not configured is disabled with a reason instead of failing
start-up: InfraAI without vSphere still restarts pods, and `/infraai status` says why
vSphere is off. Adapter modules are imported on first use (`core.ports.ADAPTERS`), so a
process that never acts on Kubernetes never loads its client.

Adapter calls are synchronous and may block for as long as an outside system lets them.
From the event loop they run on this object's own bounded thread pool (`run`), never on the
loop's default executor: that one serves the bot's critical path (policy reloads, RQ
enqueues), which a slow vCenter must not be able to starve.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from core.config import Settings
from core.ports import (
    ADAPTERS,
    GrafanaPort,
    Health,
    Integration,
    KubernetesPort,
    NmapPort,
    NotConfigured,
    OllamaPort,
    PrometheusPort,
    VSpherePort,
    integration_error,
)

__all__ = ["ADAPTER_THREADS", "Health", "Integrations", "NotConfigured"]

P = ParamSpec("P")
T = TypeVar("T")

# In-process actions at once (the embedded default); more wait their turn. A hung call holds
# its thread only until the adapter's own request timeout.
ADAPTER_THREADS = 8


def _failing(title: str) -> str:
    return f"{title} is failing; the reason is in /infraai status and the bot's log"


class Integrations:
    """Adapters for one process, created on first use and reused (their clients are costly)."""

    def __init__(
        self,
        settings: Settings,
        *,
        kubernetes: Callable[[], KubernetesPort] | None = None,
        vsphere: Callable[[], VSpherePort] | None = None,
        ollama: Callable[[], OllamaPort] | None = None,
        grafana: Callable[[], GrafanaPort] | None = None,
        prometheus: Callable[[], PrometheusPort] | None = None,
        nmap: Callable[[], NmapPort] | None = None,
        threads: int = ADAPTER_THREADS,
    ) -> None:
        self.settings = settings
        self._factories: dict[str, Callable[[], Integration]] = {
            "kubernetes": kubernetes or self._build_kubernetes,
            "vsphere": vsphere or self._build_vsphere,
            "ollama": ollama or self._build_ollama,
            "grafana": grafana or self._build_grafana,
            "prometheus": prometheus or self._build_prometheus,
            "nmap": nmap or self._build_nmap,
        }
        assert set(self._factories) <= set(ADAPTERS)
        self._built: dict[str, Integration] = {}
        self._refused: dict[str, NotConfigured] = {}
        self._lock = threading.Lock()
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    # ---- typed accessors ---------------------------------------------------------------

    def kubernetes(self) -> KubernetesPort:
        """The cluster's adapter, or NotConfigured with the reason."""
        return cast(KubernetesPort, self._get("kubernetes"))

    def vsphere(self) -> VSpherePort:
        """The vCenter's adapter, or NotConfigured with the reason."""
        return cast(VSpherePort, self._get("vsphere"))

    def ollama(self) -> OllamaPort:
        """The chat model's server (the assistant's)."""
        return cast(OllamaPort, self._get("ollama"))

    def grafana(self) -> GrafanaPort:
        """Grafana's adapter (dashboards, panels, renders), or NotConfigured."""
        return cast(GrafanaPort, self._get("grafana"))

    def prometheus(self) -> PrometheusPort:
        """The Prometheus server's adapter (cheap to build: no client library to load)."""
        return cast(PrometheusPort, self._get("prometheus"))

    def nmap(self) -> NmapPort:
        """The nmap binary's adapter (discovery scans), or NotConfigured without one."""
        return cast(NmapPort, self._get("nmap"))

    def names(self) -> list[str]:
        return list(self._factories)

    # ---- building ------------------------------------------------------------------------

    def _build_kubernetes(self) -> KubernetesPort:
        spec = ADAPTERS["kubernetes"]
        module = spec.load()
        adapter: Any = getattr(module, spec.adapter)
        try:
            if self.settings.kubeconfig:
                return cast(KubernetesPort, adapter(kubeconfig=self.settings.kubeconfig))
            return cast(KubernetesPort, adapter.from_environment())
        except getattr(module, spec.not_configured) as exc:
            raise NotConfigured(
                f"Kubernetes is not configured: {exc.reason}",
                public="Kubernetes is not configured: no usable kubeconfig or service account",
            ) from None

    def _build_vsphere(self) -> VSpherePort:
        s = self.settings
        if not s.vsphere_host:
            raise NotConfigured("vSphere is not configured: VSPHERE_HOST is unset")
        spec = ADAPTERS["vsphere"]
        module = spec.load()
        adapter: Any = getattr(module, spec.adapter)
        try:
            return cast(
                VSpherePort,
                adapter(
                    host=s.vsphere_host,
                    user=s.vsphere_user or "",
                    password=s.vsphere_password or "",
                    insecure=s.vsphere_insecure,
                    task_timeout=s.infraai_action_timeout_seconds,
                ),
            )
        except getattr(module, spec.not_configured) as exc:
            raise NotConfigured(
                f"vSphere is not configured: {exc}",
                public="vSphere is not configured: the VSPHERE_* settings are not usable",
            ) from None

    def _build_ollama(self) -> OllamaPort:
        spec = ADAPTERS["ollama"]
        module = spec.load()
        adapter: Any = getattr(module, spec.adapter)
        try:
            return cast(
                OllamaPort, adapter(self.settings.ollama_base_url, self.settings.ollama_model)
            )
        except getattr(module, spec.not_configured) as exc:
            raise NotConfigured(f"Ollama is not configured: {exc}") from None

    def _build_grafana(self) -> GrafanaPort:
        url = self.settings.grafana_url
        if not url:
            raise NotConfigured("Grafana is not configured: GRAFANA_URL is unset")
        spec = ADAPTERS["grafana"]
        module = spec.load()
        adapter: Any = getattr(module, spec.adapter)
        try:
            return cast(GrafanaPort, adapter(url, self.settings.grafana_token))
        except getattr(module, spec.not_configured) as exc:
            raise NotConfigured(
                f"Grafana is not configured: {exc}",
                public="Grafana is not configured: GRAFANA_URL is not usable",
            ) from None

    def _build_prometheus(self) -> PrometheusPort:
        if not self.settings.prometheus_url:
            raise NotConfigured("Prometheus is not configured: PROMETHEUS_URL is unset")
        spec = ADAPTERS["prometheus"]
        module = spec.load()
        adapter: Any = getattr(module, spec.adapter)
        try:
            return cast(PrometheusPort, adapter(self.settings.prometheus_url))
        except getattr(module, spec.not_configured) as exc:
            raise NotConfigured(
                f"Prometheus is not configured: {exc}",
                public="Prometheus is not configured: PROMETHEUS_URL is not usable",
            ) from None

    def _build_nmap(self) -> NmapPort:
        spec = ADAPTERS["nmap"]
        module = spec.load()
        adapter: Any = getattr(module, spec.adapter)
        try:
            return cast(NmapPort, adapter())
        except getattr(module, spec.not_configured) as exc:
            raise NotConfigured(f"nmap is not configured: {exc}") from None

    def _get(self, name: str) -> Integration:
        """The adapter, or NotConfigured with the reason (remembered: config does not change)."""
        with self._lock:
            if name in self._built:
                return self._built[name]
            if name in self._refused:
                raise self._refused[name]
            try:
                adapter = self._factories[name]()
            except NotConfigured as exc:
                self._refused[name] = exc
                raise
            self._built[name] = adapter
            return adapter

    # ---- calling -------------------------------------------------------------------------

    @contextlib.contextmanager
    def faults(self) -> Iterator[None]:
        """Turn adapter errors into IntegrationError at the port (others pass through)."""
        try:
            yield
        except Exception as exc:
            translated = integration_error(exc)
            if translated is None:
                raise
            raise translated from exc

    async def run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`call(*args, **kwargs)` on the adapter thread pool, awaited from the loop."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="adapter")
            pool = self._pool
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(call, *args, **kwargs))

    def health(self, name: str) -> Health:
        """The integration's cheap check, synchronous (the health monitor runs it on a thread
        of its own, with a deadline); never raises."""
        title = ADAPTERS[name].title
        try:
            adapter = self._get(name)
        except NotConfigured as exc:
            return Health(name, "not configured", str(exc), exc.public)
        except Exception as exc:
            return Health(name, "failing", f"{type(exc).__name__}: {exc}", _failing(title))
        try:
            ok, detail = adapter.health()
        except Exception as exc:  # the contract says never; a bug must not kill the monitor
            ok, detail = False, f"health check crashed: {type(exc).__name__}: {exc}"
        if ok:
            return Health(name, "ok", detail, "ok")
        return Health(name, "failing", detail, _failing(title))

    def close(self) -> None:
        with self._lock:
            built = list(self._built.values())
            self._built.clear()
            pool, self._pool = self._pool, None
        for adapter in built:
            adapter.close()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
