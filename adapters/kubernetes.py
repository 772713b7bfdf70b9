"""Kubernetes adapter: the few reads and writes InfraAI performs on a cluster.

Built on the official synchronous client (``kubernetes``). The worker is synchronous; code
on an event loop runs these methods in a thread (``asyncio.to_thread``). Each adapter owns
its ``ApiClient`` and ``Configuration`` — never the client's global default — so adapters
for several clusters (or a test's fake next to a real one) can coexist in one process.

Every write is described as the exact HTTP request it sends (``ActionOutcome.request``), so
a dry run (shadow mode) can show people what *would* have happened: in a dry run every read
still happens (a missing pod is still reported as missing), only the write is skipped.

Writes mirror what ``kubectl`` sends, so operators reading audit logs see familiar requests:
``kubectl delete pod`` (DeleteOptions ``propagationPolicy: Background``), ``kubectl rollout
restart`` (a strategic merge of the ``restartedAt`` template annotation), ``kubectl scale``
(a patch of the ``scale`` subresource, which an HPA or admission policy can see for what it
is).

Errors surface as ``KubernetesError`` with a small, stable ``reason`` vocabulary and a
``transient`` flag, so the caller's retry policy never has to parse client exceptions.
This module imports nothing of InfraAI's own (adapters sit at the bottom of the layering).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

__all__ = [
    "ActionOutcome",
    "KubernetesAdapter",
    "KubernetesError",
    "KubernetesNotConfigured",
]

T = TypeVar("T")

# The client's config loaders are untyped; these aliases keep the calls type-checked here.
_load_kube_config: Callable[..., None] = k8s_config.load_kube_config
_load_incluster_config: Callable[..., None] = k8s_config.load_incluster_config

REASONS = frozenset(
    {
        "not_found",
        "forbidden",
        "unauthorized",
        "conflict",
        "invalid",
        "unreachable",
        "refused",
        "timeout",
        "error",
    }
)
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
_WRITE_VERBS = frozenset({"delete", "patch", "create", "update"})
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
SERVICE_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
USER_AGENT = "infraai/0.1 (kubernetes-python)"
HEALTH_TIMEOUT = 3.0

# DNS-1123 label (namespaces) and subdomain (pods, deployments): checked before any request
# so a malformed name from a template or a model is refused with a clear message instead of
# being URL-quoted into some other path.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class KubernetesNotConfigured(Exception):
    """No usable cluster configuration: the caller disables the integration with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KubernetesError(Exception):
    """A failed call, classified so callers decide without parsing client exceptions.

    ``reason`` is one of ``REASONS``. ``transient`` is True only when trying again later
    could succeed (unreachable, timeout, 5xx, 429); a refusal, a missing object or missing
    permissions will fail the same way every time.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown KubernetesError reason {reason!r}")
        message = " ".join(message.split())  # one line, whatever the server sent
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.transient = transient
        self.status = status

    def __repr__(self) -> str:
        return f"KubernetesError({self.reason!r}, {self.message!r}, transient={self.transient})"


@dataclass
class ActionOutcome:
    """What an adapter call did (or, in a dry run, would have done).

    ``request`` is the exact write request (method, path, content type, body) — ``None``
    for reads and for writes that turned out unnecessary.
    """

    summary: str
    request: str | None
    data: Any = None
    dry_run: bool = False


class KubernetesAdapter:
    """One cluster, one ``ApiClient``. Methods are synchronous and thread-safe."""

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        request_timeout: float = 10.0,
    ) -> None:
        if request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        configuration = k8s.Configuration()
        # Resolved here, not by the client: it reads $KUBECONFIG once, at import.
        path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        self.source = (
            "in-cluster service account"
            if in_cluster
            else f"kubeconfig {path}" + (f" (context {context})" if context else "")
        )
        try:
            if in_cluster:
                _load_incluster_config(client_configuration=configuration)
            else:
                _load_kube_config(
                    config_file=path,
                    context=context,
                    client_configuration=configuration,
                    persist_config=False,  # never rewrite a user's kubeconfig
                )
        except ConfigException as exc:
            raise KubernetesNotConfigured(f"{self.source} unusable: {exc}") from exc
        except Exception as exc:  # a malformed file fails deep in the loader, any which way
            raise KubernetesNotConfigured(
                f"{self.source} unusable: {type(exc).__name__}: {exc}"
            ) from exc
        # No automatic retries: urllib3 would otherwise retry a DELETE on a read timeout
        # (it counts DELETE as idempotent), and a timed-out health check would take four
        # times its budget. The caller owns retries, guided by KubernetesError.transient.
        configuration.retries = urllib3.Retry(0, redirect=0, raise_on_redirect=False)
        self._configuration = configuration
        self._api = k8s.ApiClient(configuration)
        self._api.user_agent = USER_AGENT
        self._core = k8s.CoreV1Api(self._api)
        self._apps = k8s.AppsV1Api(self._api)
        self._version = k8s.VersionApi(self._api)
        self.request_timeout = request_timeout
        self.server: str = configuration.host

    @classmethod
    def from_environment(cls, *, request_timeout: float = 10.0) -> KubernetesAdapter:
        """Configure as kubectl would: an explicit ``$KUBECONFIG``, else the in-cluster
        service account when running in a pod, else ``~/.kube/config``.

        Raises ``KubernetesNotConfigured`` when none exists, so the caller can disable the
        integration and say why instead of failing every action later.
        """
        env = os.environ.get("KUBECONFIG", "")
        if env:
            paths = [p for p in env.split(os.pathsep) if p]
            if not any(Path(p).expanduser().exists() for p in paths):
                raise KubernetesNotConfigured(f"KUBECONFIG={env}: no such file")
            return cls(kubeconfig=env, request_timeout=request_timeout)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            if not Path(SERVICE_TOKEN).exists():
                raise KubernetesNotConfigured(
                    f"KUBERNETES_SERVICE_HOST is set but {SERVICE_TOKEN} is missing "
                    "(is automountServiceAccountToken off?)"
                )
            return cls(in_cluster=True, request_timeout=request_timeout)
        default = Path("~/.kube/config").expanduser()
        if default.exists():
            return cls(kubeconfig=str(default), request_timeout=request_timeout)
        raise KubernetesNotConfigured(
            "no kubeconfig (KUBECONFIG unset, ~/.kube/config missing) and not in a cluster"
        )

    def close(self) -> None:
        """Release pooled connections."""
        close: Callable[[], None] = self._api.close
        close()

    def __enter__(self) -> KubernetesAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- health ---------------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        """``GET /version``: cheap, needs no RBAC grant, yet rejects a bad token (401) — so
        it checks reachability and credentials without assuming cluster-wide rights."""
        timeout = min(self.request_timeout, HEALTH_TIMEOUT)
        try:
            info = self._call(
                lambda: self._version.get_code(_request_timeout=timeout),
                verb="get",
                what="version",
                timeout=timeout,
            )
        except KubernetesError as exc:
            return False, exc.message
        except Exception as exc:  # health must never raise
            return False, f"Kubernetes health check failed: {type(exc).__name__}: {exc}"
        return True, f"Kubernetes {info.git_version} at {self.server}"

    # ---- writes ---------------------------------------------------------------------------

    def restart_pod(self, namespace: str, pod: str, *, dry_run: bool = False) -> ActionOutcome:
        """Delete a pod so its controller replaces it (what "restart a pod" means).

        Refused for a pod no controller owns — it would simply be gone — and for a static
        (mirror) pod, which the kubelet recreates without restarting anything.
        """
        _check_name(namespace, "namespace", _LABEL)
        _check_name(pod, "pod", _SUBDOMAIN)
        what = f"pod {namespace}/{pod}"
        obj = self._call(
            lambda: self._core.read_namespaced_pod(
                pod, namespace, _request_timeout=self.request_timeout
            ),
            verb="get",
            what=what,
        )
        meta = obj.metadata
        annotations = (meta.annotations if meta else None) or {}
        owner = _controller(obj)
        if owner is None:
            raise KubernetesError(
                "refused", f"{what} has no controller; deleting it would not bring it back"
            )
        if owner.kind == "Node" or "kubernetes.io/config.mirror" in annotations:
            raise KubernetesError(
                "refused",
                f"{what} is a static pod managed by the kubelet on {owner.name}; deleting it "
                "through the API does not restart it",
            )
        request = f"DELETE /api/v1/namespaces/{namespace}/pods/{pod} propagationPolicy=Background"
        controller = f"{owner.kind}/{owner.name}"
        data = {"pod": pod, "namespace": namespace, "controller": controller}
        if dry_run:
            return ActionOutcome(
                f"dry run: would delete {what}; {controller} would replace it",
                request,
                data,
                dry_run=True,
            )
        self._call(
            lambda: self._core.delete_namespaced_pod(
                pod,
                namespace,
                body=k8s.V1DeleteOptions(propagation_policy="Background"),
                _request_timeout=self.request_timeout,
            ),
            verb="delete",
            what=what,
        )
        return ActionOutcome(f"deleted {what}; {controller} will replace it", request, data)

    def rollout_restart(
        self,
        namespace: str,
        deployment: str,
        *,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> ActionOutcome:
        """``kubectl rollout restart``: stamp the pod template so the deployment rolls every
        pod under its own surge/unavailability rules (unlike deleting pods by hand)."""
        _check_name(namespace, "namespace", _LABEL)
        _check_name(deployment, "deployment", _SUBDOMAIN)
        what = f"deployment {namespace}/{deployment}"
        obj = self._call(
            lambda: self._apps.read_namespaced_deployment(
                deployment, namespace, _request_timeout=self.request_timeout
            ),
            verb="get",
            what=what,
        )
        if obj.spec is not None and obj.spec.paused:
            raise KubernetesError(
                "refused", f"{what} is paused; a restart would not roll out until it is resumed"
            )
        moment = _utc(now) or datetime.now(UTC)  # a naive ``now`` is taken as UTC
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}"
        request = f"PATCH {path} ({STRATEGIC_MERGE}) {_compact(body)}"
        data: dict[str, Any] = {"restartedAt": stamp}
        if dry_run:
            return ActionOutcome(
                f"dry run: would restart the rollout of {what}", request, data, dry_run=True
            )
        patched = self._call(
            lambda: self._apps.patch_namespaced_deployment(
                deployment,
                namespace,
                body,
                _content_type=STRATEGIC_MERGE,
                _request_timeout=self.request_timeout,
            ),
            verb="patch",
            what=what,
        )
        data["generation"] = patched.metadata.generation if patched.metadata else None
        return ActionOutcome(f"restarted the rollout of {what} at {stamp}", request, data)

    def scale(
        self, namespace: str, deployment: str, replicas: int, *, dry_run: bool = False
    ) -> ActionOutcome:
        """``kubectl scale``: patch the ``scale`` subresource (what an HPA and RBAC rules
        for ``deployments/scale`` expect), after reading the current count for the summary.
        Nothing is written when the deployment already has that many replicas."""
        _check_name(namespace, "namespace", _LABEL)
        _check_name(deployment, "deployment", _SUBDOMAIN)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise KubernetesError(
                "invalid", f"replicas must be a whole number ≥ 0, not {replicas!r}"
            )
        what = f"deployment {namespace}/{deployment}"
        current_scale = self._call(
            lambda: self._apps.read_namespaced_deployment_scale(
                deployment, namespace, _request_timeout=self.request_timeout
            ),
            verb="get",
            what=what,
        )
        current = current_scale.spec.replicas if current_scale.spec else None
        current = current or 0
        data = {"from": current, "to": replicas}
        if current == replicas:
            return ActionOutcome(
                f"{deployment}: already at {replicas} replicas; nothing to do",
                None,
                data,
                dry_run=dry_run,
            )
        body = {"spec": {"replicas": replicas}}
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}/scale"
        request = f"PATCH {path} ({STRATEGIC_MERGE}) {_compact(body)}"
        summary = f"{deployment}: {current} → {replicas} replicas"
        if dry_run:
            return ActionOutcome(f"dry run: {summary}", request, data, dry_run=True)
        self._call(
            lambda: self._apps.patch_namespaced_deployment_scale(
                deployment,
                namespace,
                body,
                _content_type=STRATEGIC_MERGE,
                _request_timeout=self.request_timeout,
            ),
            verb="patch",
            what=f"{what} (scale)",
        )
        return ActionOutcome(summary, request, data)

    # ---- reads ----------------------------------------------------------------------------

    def list_pods(self, namespace: str, selector: str | None = None) -> ActionOutcome:
        """Pods as the columns of ``kubectl get pods`` (plus owner), for people and models."""
        _check_name(namespace, "namespace", _LABEL)
        what = f"pods in {namespace}" + (f" matching {selector}" if selector else "")
        pods = self._call(
            lambda: self._core.list_namespaced_pod(
                namespace, label_selector=selector or None, _request_timeout=self.request_timeout
            ),
            verb="list",
            what=what,
        )
        now = datetime.now(UTC)
        rows = [_pod_row(p, now) for p in pods.items]
        rows.sort(key=lambda r: r["name"])
        return ActionOutcome(f"{len(rows)} {what}", None, rows)

    def pod_logs(
        self,
        namespace: str,
        pod: str,
        tail: int = 100,
        max_bytes: int = 64_000,
        *,
        container: str | None = None,
        previous: bool = False,
    ) -> ActionOutcome:
        """The last ``tail`` lines of a pod's log, at most ``max_bytes`` (the END is kept:
        the newest lines are the ones that explain a failure). ``previous`` reads the last
        terminated container's log — the useful one for a pod in CrashLoopBackOff.

        The pod is read first to pick the container as kubectl does (the
        ``default-container`` annotation, else the first) — a multi-container pod would
        otherwise be a 400 — and the log is streamed so a huge one never sits in memory.
        """
        _check_name(namespace, "namespace", _LABEL)
        _check_name(pod, "pod", _SUBDOMAIN)
        if isinstance(tail, bool) or not isinstance(tail, int) or tail < 0:
            raise KubernetesError("invalid", f"tail must be a whole number ≥ 0, not {tail!r}")
        if max_bytes < 1:
            raise KubernetesError("invalid", "max_bytes must be positive")
        what = f"pod {namespace}/{pod}"
        if container is None:
            obj = self._call(
                lambda: self._core.read_namespaced_pod(
                    pod, namespace, _request_timeout=self.request_timeout
                ),
                verb="get",
                what=what,
            )
            container = _default_container(obj)

        def read() -> tuple[bytes, bool]:
            # Typed as str, but with _preload_content=False it is the raw urllib3 response.
            response: Any = self._core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                tail_lines=tail,
                previous=previous or None,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            )
            kept, truncated = b"", False
            try:
                for chunk in response.stream(16_384):
                    kept += chunk
                    if len(kept) > max_bytes:
                        kept, truncated = kept[-max_bytes:], True
            except BaseException:
                response.close()  # half-read: the connection must not go back to the pool
                raise
            response.release_conn()
            return kept, truncated

        raw, truncated = self._call(read, verb="get", what=f"logs of {what}")
        if truncated:
            newline = raw.find(b"\n")
            if 0 <= newline < len(raw) - 1:
                raw = raw[newline + 1 :]  # start on a whole line
        text = raw.decode("utf-8", errors="replace")
        lines = text.count("\n") + (0 if not text or text.endswith("\n") else 1)
        summary = f"last {lines} log lines of {what}" + (f" ({container})" if container else "")
        if truncated:
            note = f"[… earlier output truncated: showing the last {len(raw)} bytes]\n"
            text = note + text
            summary += f", truncated to {max_bytes} bytes"
        return ActionOutcome(summary, None, text)

    def events(self, namespace: str, limit: int = 50) -> ActionOutcome:
        """Recent events, newest first (what ``kubectl events`` shows).

        The API's ``limit`` pages in storage order, not by time, so all events of the
        namespace are read (they expire after an hour) and sorted here.
        """
        _check_name(namespace, "namespace", _LABEL)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise KubernetesError("invalid", f"limit must be a whole number ≥ 1, not {limit!r}")
        events = self._call(
            lambda: self._core.list_namespaced_event(
                namespace, _request_timeout=self.request_timeout
            ),
            verb="list",
            what=f"events in {namespace}",
        )
        rows = [_event_row(e) for e in events.items]
        rows.sort(key=lambda r: r["_sort"], reverse=True)
        for row in rows:
            del row["_sort"]
        shown = rows[:limit]
        summary = f"{len(shown)} most recent events in {namespace}"
        if len(rows) > limit:
            summary += f" (of {len(rows)})"
        return ActionOutcome(summary, None, shown)

    # ---- plumbing -------------------------------------------------------------------------

    def _call(
        self, fn: Callable[[], T], *, verb: str, what: str, timeout: float | None = None
    ) -> T:
        """Run one client call and turn every failure into a ``KubernetesError``."""
        try:
            return fn()
        except ApiException as exc:
            raise _from_api_exception(exc, verb=verb, what=what) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise self._from_transport(exc, verb, what, timeout) from exc
        except pydantic.ValidationError as exc:
            errors = exc.errors()
            detail = (
                f"{'.'.join(str(p) for p in errors[0]['loc'])}: {errors[0]['msg']}"
                if errors
                else str(exc)
            )
            raise KubernetesError(
                "error", f"unexpected response from the Kubernetes API ({verb} {what}): {detail}"
            ) from exc
        except OSError as exc:
            raise KubernetesError(
                "unreachable", f"Kubernetes API at {self.server} unreachable: {exc}", transient=True
            ) from exc

    def _from_transport(
        self, exc: urllib3.exceptions.HTTPError, verb: str, what: str, timeout: float | None
    ) -> KubernetesError:
        cause: BaseException = exc
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            cause = exc.reason
        # NewConnectionError subclasses ConnectTimeoutError in urllib3: test it first.
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            detail = str(cause).split(": ", 1)[-1]
            return KubernetesError(
                "unreachable",
                f"Kubernetes API at {self.server} unreachable: {detail}",
                transient=True,
            )
        if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
            seconds = timeout if timeout is not None else self.request_timeout
            # A write that timed out waiting for the answer may have been applied: retrying it
            # blindly could run it twice, so only reads (and connect timeouts) are transient.
            sent = verb in _WRITE_VERBS and not isinstance(
                cause, urllib3.exceptions.ConnectTimeoutError
            )
            return KubernetesError(
                "timeout",
                f"Kubernetes API at {self.server} did not answer within {seconds:g}s "
                f"({verb} {what})"
                + ("; it may have been applied: check before retrying" if sent else ""),
                transient=not sent,
            )
        if isinstance(cause, urllib3.exceptions.SSLError):
            return KubernetesError("error", f"TLS failure talking to {self.server}: {cause}")
        return KubernetesError(
            "unreachable",
            f"Kubernetes API at {self.server} unreachable: {type(cause).__name__}: {cause}",
            transient=True,
        )


# ---- helpers ------------------------------------------------------------------------------


def _check_name(value: str, kind: str, pattern: re.Pattern[str]) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise KubernetesError("invalid", f"{value!r} is not a valid {kind} name")


def _compact(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _status(exc: ApiException) -> dict[str, Any]:
    """The ``Status`` object the API server sends with every error (if it is one)."""
    try:
        body = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) and body.get("kind") == "Status" else {}


def _from_api_exception(exc: ApiException, *, verb: str, what: str) -> KubernetesError:
    code = int(exc.status or 0)
    status = _status(exc)
    message = str(status.get("message") or exc.reason or "no detail").strip()
    api_reason = status.get("reason") or ""
    if code == 404:
        return KubernetesError("not_found", f"{what} not found", status=code)
    if code == 401:
        return KubernetesError(
            "unauthorized",
            "unauthorized: the Kubernetes API rejected our credentials (token expired or revoked?)",
            status=code,
        )
    if code == 403:
        # "pods "x" is forbidden: User "…" cannot delete resource …" → keep the why.
        detail = message.split(" is forbidden: ", 1)[-1]
        return KubernetesError(
            "forbidden", f"forbidden: cannot {verb} {what}: {detail}", status=code
        )
    if code == 409:
        return KubernetesError("conflict", f"conflict: {message}", status=code)
    if code in (400, 422):
        return KubernetesError("invalid", f"invalid: {message}", status=code)
    if code == 429 or code >= 500:
        label = api_reason or exc.reason or "error"
        return KubernetesError(
            "error",
            f"Kubernetes API error {code} {label} ({verb} {what}): {message}",
            transient=True,
            status=code,
        )
    if code == 0:  # raised inside the client: TLS failure, unsupported content type…
        return KubernetesError("error", f"Kubernetes client error ({verb} {what}): {message}")
    return KubernetesError(
        "error", f"Kubernetes API answered {code} ({verb} {what}): {message}", status=code
    )


def _controller(pod: k8s.V1Pod) -> k8s.V1OwnerReference | None:
    refs = (pod.metadata.owner_references if pod.metadata else None) or []
    return next((r for r in refs if r.controller), None)


def _default_container(pod: k8s.V1Pod) -> str | None:
    annotations = (pod.metadata.annotations if pod.metadata else None) or {}
    if annotations.get(DEFAULT_CONTAINER):
        return str(annotations[DEFAULT_CONTAINER])
    containers = pod.spec.containers if pod.spec else []
    return containers[0].name if containers else None


def _pod_status(pod: k8s.V1Pod) -> str:
    """The STATUS column of ``kubectl get pods``: a waiting/terminated reason such as
    CrashLoopBackOff says far more than the phase ("Running") it hides behind."""
    if pod.metadata and pod.metadata.deletion_timestamp:
        return "Terminating"
    status = pod.status
    if status is None:
        return "Unknown"
    for cs in status.container_statuses or []:
        state = cs.state
        if state and state.waiting and state.waiting.reason:
            return str(state.waiting.reason)
        if state and state.terminated and state.terminated.reason:
            return str(state.terminated.reason)
    return str(status.reason or status.phase or "Unknown")


def _pod_row(pod: k8s.V1Pod, now: datetime) -> dict[str, Any]:
    meta = pod.metadata or k8s.V1ObjectMeta()
    statuses = (pod.status.container_statuses if pod.status else None) or []
    containers = pod.spec.containers if pod.spec else []
    owner = _controller(pod)
    created = meta.creation_timestamp
    return {
        "name": meta.name,
        "phase": (pod.status.phase if pod.status else None) or "Unknown",
        "status": _pod_status(pod),
        "ready": f"{sum(1 for s in statuses if s.ready)}/{len(containers)}",
        "restarts": sum(s.restart_count or 0 for s in statuses),
        "node": pod.spec.node_name if pod.spec else None,
        "age_seconds": max(0, int((now - created).total_seconds())) if created else None,
        "owner": f"{owner.kind}/{owner.name}" if owner else None,
    }


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _event_row(event: k8s.CoreV1Event) -> dict[str, Any]:
    # core/v1 events written through events.k8s.io carry eventTime/series, older ones
    # lastTimestamp/count: accept both, falling back to the object's creation.
    series = event.series
    last = (
        event.last_timestamp
        or (series.last_observed_time if series else None)
        or event.event_time
        or (event.metadata.creation_timestamp if event.metadata else None)
    )
    count = event.count or (series.count if series else None) or 1
    obj = event.involved_object
    last = _utc(last)
    return {
        "type": event.type,
        "reason": event.reason,
        "object": f"{obj.kind}/{obj.name}",
        "message": (event.message or "").strip(),
        "count": count,
        "last_seen": last.strftime("%Y-%m-%dT%H:%M:%SZ") if last else None,
        "_sort": last or datetime.min.replace(tzinfo=UTC),
    }
