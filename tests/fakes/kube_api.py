"""A small stateful fake of the Kubernetes API server, for tests.

No real API server can run on the development machines (see TESTING.md), and the official
client validates every response against the API schema, so this fake answers with complete,
valid objects on the real REST paths: a deployment owns its pods through a ReplicaSet-like
controller reference, a deleted pod is replaced under a new name as a controller would do,
the ``scale`` subresource answers ``autoscaling/v1`` Scale objects, patches bump
``metadata.generation`` and ``resourceVersion``, and errors are real ``Status`` bodies.

It records every request (``requests``) so tests can assert on exactly what reached the
server — and, for dry runs, that nothing did.

Seeding::

    fake = FakeKubeAPI()
    fake.add_deployment("prod", "api", replicas=2)   # pods api-<hash>-<suffix>
    fake.add_pod("prod", "debug")                    # a bare pod: no controller
    fake.add_event("prod", kind="Pod", name="debug", reason="BackOff", message="…")
    url = await fake.start()
    write_kubeconfig(tmp_path / "kubeconfig", url)

The server runs on the caller's event loop; a synchronous client must then be called from a
thread (``await asyncio.to_thread(...)``). ``run_in_thread()`` serves it from a background
thread instead, for synchronous tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import re
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web

from tests.fakes.threaded import serve_in_thread

TOKEN = "fake-kube-token"
SERVICE_ACCOUNT = "system:serviceaccount:infraai:infraai"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    405: "MethodNotAllowed",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


_BODY = web.RequestKey("json_body", object)
_SELECTOR_SPLIT = re.compile(r",(?![^()]*\))")  # commas outside "in (a,b)"
_SELECTOR_TERM = re.compile(
    r"(?P<neg>!)?(?P<key>[A-Za-z0-9._/-]+)\s*(?:"
    r"(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)"
    r"|\s+(?P<op2>in|notin)\s*\((?P<values>[A-Za-z0-9._,\s-]*)\))?"
)


class RecordedRequest(NamedTuple):
    method: str
    path: str
    content_type: str | None
    json_body: Any


class KubeError(Exception):
    """Raised inside handlers; becomes a real ``Status`` response."""

    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suffix(n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet Kubernetes uses for names
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386); strategic merge is the same for maps, which is all
    the fake needs (lists are replaced whole)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def status_body(code: int, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "InternalError"),
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def write_kubeconfig(path: str | Path, url: str, *, token: str = TOKEN) -> Path:
    """A kubeconfig pointing at ``url`` with a bearer-token user (JSON is valid YAML)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "infraai", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "infraai"}}],
        "current-context": "fake",
    }
    path = Path(path)
    path.write_text(json.dumps(config, indent=2))
    return path


class FakeKubeAPI:
    """State plus an aiohttp server. Mutate state only between client calls."""

    def __init__(self, *, token: str = TOKEN) -> None:
        self.token = token
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, dict[str, Any]]] = {}
        self.deployments: dict[str, dict[str, dict[str, Any]]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.logs: dict[tuple[str, str], list[str]] = {}
        self.requests: list[RecordedRequest] = []
        self.forbidden: set[tuple[str, str]] = set()  # (namespace, verb); "*" matches any
        self.delay = 0.0  # seconds before every answer
        self._failures: list[tuple[int, str]] = []
        self._rv = 1000
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.url = ""

    # ---- seeding and inspection ------------------------------------------------------

    def add_namespace(self, name: str) -> dict[str, Any]:
        if name not in self.namespaces:
            self.namespaces[name] = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": self._meta(name, None, labels={"kubernetes.io/metadata.name": name}),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            self.pods[name], self.deployments[name], self.events[name] = {}, {}, []
        return self.namespaces[name]

    def add_deployment(
        self, namespace: str, name: str, *, replicas: int = 2, image: str = "nginx:1.27"
    ) -> dict[str, Any]:
        self.add_namespace(namespace)
        labels = {"app": name}
        dep: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self._meta(name, namespace, labels=labels, generation=1),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [{"name": name, "image": image}]},
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
            },
        }
        dep["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1"}
        self.deployments[namespace][name] = dep
        self._reconcile(namespace, name)
        return dep

    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        image: str = "busybox:1.36",
        phase: str = "Running",
        restarts: int = 0,
        ready: bool = True,
        waiting: str | None = None,
        node: str = "node-1",
        owner: dict[str, Any] | None = None,
        log: list[str] | None = None,
    ) -> dict[str, Any]:
        """A pod; without ``owner`` it is bare (no controller will bring it back).
        ``waiting`` sets a container waiting reason such as ``CrashLoopBackOff``."""
        self.add_namespace(namespace)
        meta = self._meta(name, namespace, labels=labels or {"run": name})
        if owner is not None:
            meta["ownerReferences"] = [owner]
        container = name if owner is None else owner["name"].rsplit("-", 1)[0]
        running = phase == "Running" and waiting is None
        if running:
            state: dict[str, Any] = {"running": {"startedAt": meta["creationTimestamp"]}}
        else:
            state = {"waiting": {"reason": waiting or "ContainerCreating"}}
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {
                "containers": [{"name": container, "image": image}],
                "nodeName": node,
                "restartPolicy": "Always",
            },
            "status": {
                "phase": phase,
                "podIP": f"10.0.0.{len(self.pods[namespace]) + 2}",
                "startTime": meta["creationTimestamp"],
                "containerStatuses": [
                    {
                        "name": container,
                        "image": image,
                        "imageID": f"docker.io/library/{image}@sha256:{'0' * 64}",
                        "ready": ready and running,
                        "restartCount": restarts,
                        "started": running,
                        "state": state,
                    }
                ],
            },
        }
        self.pods[namespace][name] = pod
        self.logs[(namespace, name)] = (
            list(log) if log is not None else [f"{_now()} {name} started", f"{_now()} ready"]
        )
        return pod

    def add_event(
        self,
        namespace: str,
        *,
        kind: str,
        name: str,
        reason: str,
        message: str,
        type: str = "Normal",
        count: int = 1,
        last_seen: str | None = None,
    ) -> dict[str, Any]:
        self.add_namespace(namespace)
        when = last_seen or _now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": self._meta(f"{name}.{secrets.token_hex(8)}", namespace),
            "involvedObject": {
                "kind": kind,
                "name": name,
                "namespace": namespace,
                "apiVersion": "apps/v1" if kind in ("Deployment", "ReplicaSet") else "v1",
            },
            "reason": reason,
            "message": message,
            "source": {"component": "fake-controller-manager"},
            "firstTimestamp": when,
            "lastTimestamp": when,
            "count": count,
            "type": type,
            "reportingComponent": "fake-controller-manager",
            "reportingInstance": "",
        }
        self.events[namespace].append(event)
        return event

    def forbid(self, namespace: str, verb: str) -> None:
        """Answer 403 to ``verb`` (get/list/delete/patch) in ``namespace`` ("*" = any)."""
        self.forbidden.add((namespace, verb))

    def fail_next(self, count: int, code: int = 503, message: str | None = None) -> None:
        """Answer the next ``count`` requests with a ``code`` Status (before auth)."""
        text = message or {500: "Internal error occurred: etcdserver: request timed out"}.get(
            code, "the server is currently unable to handle the request"
        )
        self._failures.extend([(code, text)] * count)

    def pods_of(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        """The pods any ReplicaSet of ``deployment`` owns (old ones too, mid-rollout)."""
        owned = re.compile(rf"{re.escape(deployment)}-[0-9a-f]{{10}}")
        return [
            p
            for p in self.pods.get(namespace, {}).values()
            if any(
                o["kind"] == "ReplicaSet" and owned.fullmatch(o["name"])
                for o in p["metadata"].get("ownerReferences", [])
            )
        ]

    def writes(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    # ---- server lifecycle -------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def run_in_thread(self) -> contextlib.AbstractContextManager[str]:
        """Serve from a background thread's own loop, for synchronous clients."""
        return serve_in_thread(self.start, self.stop, "fake-kube-api")

    # ---- HTTP ---------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        ctype = request.headers.get("Content-Type")
        self.requests.append(RecordedRequest(request.method, request.path, ctype, body))
        request[_BODY] = body
        if self.delay and self._stopping is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.delay)
        try:
            if self._failures:
                raise KubeError(*self._failures.pop(0))
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                raise KubeError(401, "Unauthorized")
            response: web.StreamResponse = await handler(request)
            return response
        except KubeError as exc:
            return web.json_response(
                status_body(exc.code, exc.message, exc.details), status=exc.code
            )

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if parts == ["version"] and method == "GET":
            return web.json_response(self._version())
        if parts == ["api", "v1", "namespaces"] and method == "GET":
            return web.json_response(self._list_namespaces(request))
        if len(parts) >= 5 and parts[:3] == ["api", "v1", "namespaces"]:
            ns, resource, rest = parts[3], parts[4], parts[5:]
            if resource == "pods":
                return await self._pods(request, ns, rest)
            if resource == "events" and not rest and method == "GET":
                self._authorize(ns, "list", "events", "")
                items = self.events.get(ns, [])
                return web.json_response(self._list("EventList", "v1", items))
        apps = parts[:4] == ["apis", "apps", "v1", "namespaces"]
        if apps and len(parts) in (7, 8) and parts[5] == "deployments":
            return await self._deployment(request, parts[4], parts[6], parts[7:])
        raise KubeError(404, "the server could not find the requested resource")

    async def _pods(self, request: web.Request, ns: str, rest: list[str]) -> web.StreamResponse:
        method = request.method
        if not rest and method == "GET":
            self._authorize(ns, "list", "pods", "")
            selector = request.query.get("labelSelector", "")
            items = [p for p in self.pods.get(ns, {}).values() if self._selects(selector, p)]
            return web.json_response(self._list("PodList", "v1", items))
        if len(rest) == 1 and method in ("GET", "DELETE"):
            verb = "get" if method == "GET" else "delete"
            self._authorize(ns, verb, "pods", "", rest[0])
            pod = self._pod(ns, rest[0])
            if method == "GET":
                return web.json_response(pod)
            return web.json_response(self._delete_pod(ns, pod))
        if len(rest) == 2 and rest[1] == "log" and method == "GET":
            self._authorize(ns, "get", "pods/log", "", rest[0])
            self._pod(ns, rest[0])
            lines = self.logs.get((ns, rest[0]), [])
            tail = request.query.get("tailLines")
            if tail is not None:
                lines = lines[-int(tail) :] if int(tail) > 0 else []
            text = "".join(f"{line}\n" for line in lines)
            return web.Response(text=text, content_type="text/plain")
        raise KubeError(405, f"the server does not allow this method on pods ({method})")

    async def _deployment(
        self, request: web.Request, ns: str, name: str, sub: list[str]
    ) -> web.StreamResponse:
        resource = "deployments/scale" if sub == ["scale"] else "deployments"
        if sub not in ([], ["scale"]):
            raise KubeError(404, "the server could not find the requested resource")
        verb = {"GET": "get", "PATCH": "patch"}.get(request.method)
        if verb is None:
            raise KubeError(405, f"the server does not allow this method ({request.method})")
        self._authorize(ns, verb, resource, "apps", name)
        dep = self.deployments.get(ns, {}).get(name)
        if dep is None:
            raise KubeError(
                404,
                f'deployments.apps "{name}" not found',
                {"name": name, "group": "apps", "kind": "deployments"},
            )
        if verb == "patch":
            patch = await self._patch_body(request)
            if sub:
                self._patch_scale(dep, patch)
            else:
                self._patch_deployment(dep, patch)
        return web.json_response(self._scale(dep) if sub else dep)

    # ---- behaviour ----------------------------------------------------------------------

    def _authorize(self, ns: str, verb: str, resource: str, group: str, name: str = "") -> None:
        if not ({(ns, verb), ("*", verb), (ns, "*"), ("*", "*")} & self.forbidden):
            return
        what = f'{resource.split("/")[0]} "{name}"' if name else resource.split("/")[0]
        raise KubeError(
            403,
            f'{what} is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource '
            f'"{resource}" in API group "{group}" in the namespace "{ns}"',
            {"name": name, "kind": resource.split("/")[0]} if name else {"kind": resource},
        )

    def _pod(self, ns: str, name: str) -> dict[str, Any]:
        pod = self.pods.get(ns, {}).get(name)
        if pod is None:
            raise KubeError(404, f'pods "{name}" not found', {"name": name, "kind": "pods"})
        return pod

    def _delete_pod(self, ns: str, pod: dict[str, Any]) -> dict[str, Any]:
        name = pod["metadata"]["name"]
        del self.pods[ns][name]
        self.logs.pop((ns, name), None)
        gone = copy.deepcopy(pod)
        gone["metadata"]["deletionTimestamp"] = _now()
        gone["metadata"]["deletionGracePeriodSeconds"] = 30
        gone["metadata"]["resourceVersion"] = self._next_rv()
        self.add_event(ns, kind="Pod", name=name, reason="Killing", message="Stopping container")
        for dep_name in list(self.deployments.get(ns, {})):
            self._reconcile(ns, dep_name)
        return gone

    async def _patch_body(self, request: web.Request) -> dict[str, Any]:
        ctype = (request.content_type or "").lower()
        if ctype not in (STRATEGIC, MERGE):
            raise KubeError(415, f'the body of the request was in an unknown format: "{ctype}"')
        body = request[_BODY]
        if not isinstance(body, dict):
            raise KubeError(400, "the body of the request could not be decoded as a JSON object")
        return body

    def _patch_deployment(self, dep: dict[str, Any], patch: dict[str, Any]) -> None:
        name = dep["metadata"]["name"]
        ns = dep["metadata"]["namespace"]
        new = _merge(copy.deepcopy(dep), patch)
        errors = self._validate_deployment(new, dep)
        if errors:
            raise KubeError(
                422,
                f'Deployment.apps "{name}" is invalid: ' + ", ".join(errors),
                {"name": name, "group": "apps", "kind": "Deployment"},
            )
        if new == dep:
            return
        template_changed = new["spec"]["template"] != dep["spec"]["template"]
        if new["spec"] != dep["spec"]:
            new["metadata"]["generation"] = dep["metadata"]["generation"] + 1
        if template_changed:
            revision = int(dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
            new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(revision + 1)
        new["metadata"]["resourceVersion"] = self._next_rv()
        dep.clear()
        dep.update(new)
        if template_changed:  # a finished rollout: every pod replaced by the new ReplicaSet
            for pod in self.pods_of(ns, name):
                del self.pods[ns][pod["metadata"]["name"]]
                self.logs.pop((ns, pod["metadata"]["name"]), None)
        self._reconcile(ns, name)

    def _patch_scale(self, dep: dict[str, Any], patch: dict[str, Any]) -> None:
        scale = _merge(self._scale(dep), patch)
        replicas = scale.get("spec", {}).get("replicas")
        name = dep["metadata"]["name"]
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise KubeError(
                422,
                f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                f"{json.dumps(replicas)}: must be greater than or equal to 0",
                {"name": name, "group": "autoscaling", "kind": "Scale"},
            )
        self._patch_deployment(dep, {"spec": {"replicas": replicas}})

    def _validate_deployment(self, new: dict[str, Any], old: dict[str, Any]) -> list[str]:
        errors = []
        replicas = new.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            errors.append(
                f"spec.replicas: Invalid value: {json.dumps(replicas)}: "
                "must be greater than or equal to 0"
            )
        if new.get("metadata", {}).get("name") != old["metadata"]["name"]:
            errors.append("metadata.name: Invalid value: field is immutable")
        if new.get("spec", {}).get("selector") != old["spec"]["selector"]:
            errors.append("spec.selector: Invalid value: field is immutable")
        template = new.get("spec", {}).get("template", {})
        if not isinstance(template, dict) or not template.get("spec", {}).get("containers"):
            errors.append("spec.template.spec.containers: Required value")
        return errors

    def _reconcile(self, ns: str, name: str) -> None:
        """Be the ReplicaSet controller: make the pod count match spec.replicas."""
        dep = self.deployments[ns][name]
        rs = self._rs_name(ns, name)
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ns}/{rs}")),
            "controller": True,
            "blockOwnerDeletion": True,
        }
        pods = self.pods_of(ns, name)
        want = dep["spec"]["replicas"]
        container = dep["spec"]["template"]["spec"]["containers"][0]
        for pod in pods[want:]:
            del self.pods[ns][pod["metadata"]["name"]]
            self.logs.pop((ns, pod["metadata"]["name"]), None)
        for _ in range(want - len(pods)):
            pod_name = f"{rs}-{_suffix()}"
            labels = dict(dep["spec"]["template"]["metadata"].get("labels", {}))
            labels["pod-template-hash"] = rs.rsplit("-", 1)[1]
            self.add_pod(ns, pod_name, labels=labels, image=container["image"], owner=owner)
            created = f"Created pod: {pod_name}"
            self.add_event(
                ns, kind="ReplicaSet", name=rs, reason="SuccessfulCreate", message=created
            )
        replicas = len(self.pods_of(ns, name))
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }

    def _rs_name(self, ns: str, name: str) -> str:
        template = self.deployments[ns][name]["spec"]["template"]
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
        return f"{name}-{digest[:10]}"

    def _scale(self, dep: dict[str, Any]) -> dict[str, Any]:
        meta = dep["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: meta[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {
                "replicas": dep.get("status", {}).get("replicas", 0),
                "selector": ",".join(
                    f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items()
                ),
            },
        }

    @staticmethod
    def _selects(selector: str, obj: dict[str, Any]) -> bool:
        """Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``,
        ``a notin (x,y)``; anything else is a 400, as the real server answers."""
        labels = obj["metadata"].get("labels") or {}
        for term in (t.strip() for t in _SELECTOR_SPLIT.split(selector) if t.strip()):
            match = _SELECTOR_TERM.fullmatch(term)
            if match is None:
                raise KubeError(400, f"unable to parse requirement: {term!r}")
            key, value, values = match.group("key", "value", "values")
            op, negated = match["op"] or match["op2"], bool(match["neg"])
            if negated and op:
                raise KubeError(400, f"unable to parse requirement: {term!r}")
            have = labels.get(key)
            if op in ("=", "=="):
                ok = have == value
            elif op == "!=":
                ok = have != value
            elif op in ("in", "notin"):
                choices = {v.strip() for v in values.split(",")}
                ok = (have in choices) if op == "in" else (have not in choices)
            else:
                ok = (key in labels) != negated
            if not ok:
                return False
        return True

    def _list_namespaces(self, request: web.Request) -> dict[str, Any]:
        self._authorize("*", "list", "namespaces", "")
        items = list(self.namespaces.values())
        limit = int(request.query.get("limit", "0") or 0)
        return self._list("NamespaceList", "v1", items[:limit] if limit > 0 else items)

    def _list(self, kind: str, api_version: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    @staticmethod
    def _version() -> dict[str, str]:
        return {
            "major": "1",
            "minor": "31",
            "gitVersion": "v1.31.0-fake",
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2024-08-13T07:28:49Z",
            "goVersion": "go1.22.5",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _meta(
        self,
        name: str,
        namespace: str | None,
        *,
        labels: dict[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "uid": str(uuid.uuid4()),
            "resourceVersion": self._next_rv(),
            "creationTimestamp": _now(),
            **extra,
        }
        if namespace is not None:
            meta["namespace"] = namespace
        if labels:
            meta["labels"] = dict(labels)
        return meta

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)
