"""The outside systems InfraAI acts on, built lazily from settings.

An integration that is not configured is disabled with a reason instead of failing
start-up: InfraAI without vSphere still restarts pods, and `/infraai status` says why
vSphere is off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from adapters.kubernetes import KubernetesAdapter, KubernetesNotConfigured
from adapters.vsphere import VSphereAdapter, VSphereNotConfigured
from core.config import Settings

State = Literal["ok", "not configured", "failing"]


class NotConfigured(Exception):
    """The integration an action needs is not configured; the message says why."""


@dataclass(frozen=True)
class Health:
    name: str
    state: State
    detail: str


class Integrations:
    """Adapters for one process, created on first use and reused (their clients are costly)."""

    def __init__(
        self,
        settings: Settings,
        *,
        kubernetes: Callable[[], Any] | None = None,
        vsphere: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self._factories: dict[str, Callable[[], Any]] = {
            "kubernetes": kubernetes or self._kubernetes,
            "vsphere": vsphere or self._vsphere,
        }
        self._built: dict[str, Any] = {}
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()

    def _kubernetes(self) -> KubernetesAdapter:
        try:
            if self.settings.kubeconfig:
                return KubernetesAdapter(kubeconfig=self.settings.kubeconfig)
            return KubernetesAdapter.from_environment()
        except KubernetesNotConfigured as exc:
            raise NotConfigured(f"Kubernetes is not configured: {exc.reason}") from None

    def _vsphere(self) -> VSphereAdapter:
        s = self.settings
        if not s.vsphere_host:
            raise NotConfigured("vSphere is not configured: VSPHERE_HOST is unset")
        try:
            return VSphereAdapter(
                host=s.vsphere_host,
                user=s.vsphere_user or "",
                password=s.vsphere_password or "",
                insecure=s.vsphere_insecure,
                task_timeout=s.infraai_action_timeout_seconds,
            )
        except VSphereNotConfigured as exc:
            raise NotConfigured(f"vSphere is not configured: {exc}") from None

    def get(self, name: str) -> Any:
        """The adapter, or NotConfigured with the reason (remembered: config does not change)."""
        with self._lock:
            if name in self._built:
                return self._built[name]
            if name in self._refused:
                raise NotConfigured(self._refused[name])
            try:
                adapter = self._factories[name]()
            except NotConfigured as exc:
                self._refused[name] = str(exc)
                raise
            self._built[name] = adapter
            return adapter

    def health(self, name: str) -> Health:
        """A cheap check, synchronous (call it in a thread); never raises."""
        try:
            adapter = self.get(name)
        except NotConfigured as exc:
            return Health(name, "not configured", str(exc))
        except Exception as exc:
            return Health(name, "failing", f"{type(exc).__name__}: {exc}")
        ok, detail = adapter.health()
        return Health(name, "ok" if ok else "failing", detail)

    def names(self) -> list[str]:
        return list(self._factories)

    def close(self) -> None:
        with self._lock:
            for adapter in self._built.values():
                close = getattr(adapter, "close", None)
                if close is not None:
                    close()
            self._built.clear()
