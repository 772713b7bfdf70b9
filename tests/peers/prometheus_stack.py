"""Real Prometheus and Alertmanager processes for integration tests.

Debian's ``prometheus`` (2.42) and ``prometheus-alertmanager`` (0.25) binaries, started on
127.0.0.1 ports with their config, data and log in a temp directory, tuned so that alerts move
in seconds instead of minutes (see TESTING.md):

- :class:`Alertmanager` routes every alert to one webhook receiver (``send_resolved: true``,
  optional bearer token or basic auth) with ``group_wait: 0s``, ``group_interval: 1s``, and
  ``group_by: ['...']`` (each distinct label set is its own group, so each alert is its own
  notification) unless told otherwise. :meth:`Alertmanager.post_alerts` /
  :meth:`Alertmanager.resolve` are the fast path (no Prometheus involved).
- :class:`Prometheus` scrapes the targets it is given every second, evaluates a rule file
  every second, and sends to an :class:`Alertmanager` with ``--rules.alert.resend-delay=1s``.

Both are context managers; ``start()`` returns once ``GET /-/ready`` answers 200 and
``stop()`` terminates (then kills) the process. Processes still running when the interpreter
exits are stopped by an ``atexit`` hook. A missing binary skips the test.

The HTTP helpers (``post_alerts``, ``query``, …) are short blocking calls to loopback; they
are fine inside async tests (Alertmanager delivers webhooks after its API call returned).

Fixtures (import them into ``tests/conftest.py``): ``alertmanager_factory`` and
``prometheus_factory`` start peers on demand and stop them all at teardown, printing each
peer's log tail to stderr, which pytest shows only when the test failed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

__all__ = [
    "ALERTMANAGER_BINARY",
    "PROMETHEUS_BINARY",
    "SKIP_REASON",
    "Alertmanager",
    "Prometheus",
    "alert_rule",
    "alertmanager_factory",
    "free_port",
    "prometheus_factory",
    "rfc3339",
    "wait_for",
]

PROMETHEUS_BINARY = "prometheus"
ALERTMANAGER_BINARY = "prometheus-alertmanager"
SKIP_REASON = (
    "needs Debian's prometheus and prometheus-alertmanager: "
    "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
)
LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40

# Alertmanager's zero time: the ``endsAt`` of a firing alert in a webhook payload.
ZERO_TIME = "0001-01-01T00:00:00Z"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def rfc3339(value: datetime | str) -> str:
    """``2024-05-01T12:00:00.123Z`` for a datetime (naive means UTC); strings pass through."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _binary(name: str) -> str:
    """The path of binary ``name``; skips the test unless both peers' binaries are installed."""
    found = {b: shutil.which(b) for b in (PROMETHEUS_BINARY, ALERTMANAGER_BINARY)}
    path = found[name]
    if path is None or None in found.values():
        pytest.skip(SKIP_REASON)
    return path


def alert_rule(
    name: str,
    expr: str,
    *,
    for_: str = "0s",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    group: str = "infraai-tests",
) -> str:
    """A Prometheus rule file (YAML text) holding one alerting rule."""
    rule: dict[str, Any] = {"alert": name, "expr": expr, "for": for_}
    if labels:
        rule["labels"] = dict(labels)
    if annotations:
        rule["annotations"] = dict(annotations)
    return yaml.safe_dump({"groups": [{"name": group, "rules": [rule]}]}, sort_keys=False)


class _PortInUse(Exception):
    pass


_LIVE: set[_Peer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for peer in list(_LIVE):
        with contextlib.suppress(Exception):
            peer.stop()


class _Peer:
    """One child process listening on 127.0.0.1, with its files in ``workdir``."""

    label = "peer"
    binary_name = ""

    def __init__(
        self,
        *,
        port: int | None,
        workdir: str | Path | None,
        extra_args: Sequence[str],
    ) -> None:
        self.binary = _binary(self.binary_name)
        self._fixed_port = port
        self.port = port or 0
        self._own_dir = workdir is None
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"infraai-{self.label}-"))
        else:
            self.workdir = Path(workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.label}.log"
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        self._log_offset = 0

    # -- subclass hooks ----------------------------------------------------------------------

    def _write_config(self) -> None:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (also the peer's ``--web.external-url``)."""
        return f"http://{self.address}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> _Peer:
        """Start the process and wait until ``GET /-/ready`` answers 200."""
        if self.process is not None:
            raise RuntimeError(f"{self.label} was already started")
        attempts = 1 if self._fixed_port else 3
        for _ in range(attempts):
            if not self._fixed_port:
                self.port = free_port()
            self._write_config()
            self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            began = time.monotonic()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    self._launcher() + self._command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                )
            _LIVE.add(self)
            try:
                self._wait_ready()
            except _PortInUse:
                self._terminate()
                self.process = None
                continue
            except BaseException:
                self.stop()
                raise
            self.start_seconds = time.monotonic() - began
            return self
        raise RuntimeError(
            f"{self.label}: no free port after {attempts} attempts\n{self.describe()}"
        )

    @staticmethod
    def _launcher() -> list[str]:
        """``setpriv --pdeathsig KILL --``: the peer dies with pytest even if pytest is killed.

        The kernel sends the signal when the *thread* that started the child ends, so only
        the main thread (where pytest runs fixtures) uses it.
        """
        setpriv = shutil.which("setpriv")
        if setpriv is None or threading.current_thread() is not threading.main_thread():
            return []
        return [setpriv, "--pdeathsig", "KILL", "--"]

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            returncode = self.process.poll()
            if returncode is not None:
                if "address already in use" in self._log_since_start().lower():
                    raise _PortInUse
                raise RuntimeError(
                    f"{self.label} exited with {returncode} before it was ready\n{self.describe()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.label} not ready within {READY_TIMEOUT:.0f} s\n{self.describe()}"
                )
            time.sleep(0.02)

    def _terminate(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _LIVE.discard(self)

    def stop(self) -> None:
        """Terminate the process (SIGKILL after 10 s); idempotent. Removes an own temp dir."""
        self._terminate()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- diagnostics -------------------------------------------------------------------------

    def _log_since_start(self) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines the process logged (since its last start)."""
        return "\n".join(self._log_since_start().splitlines()[-lines:])

    def describe(self, lines: int = LOG_TAIL_LINES) -> str:
        """A paragraph for failure messages: where it runs, its state, its log tail."""
        if self.process is None:
            state = "not started"
        elif self.process.poll() is None:
            state = f"pid {self.process.pid} running"
        else:
            state = f"pid {self.process.pid} exited with {self.process.returncode}"
        return (
            f"--- {self.label} at {self.url} ({state}); log {self.log_path}, last {lines} lines:\n"
            f"{self.log_tail(lines)}\n--- end of {self.label} log"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} running={self.running}>"

    # -- HTTP --------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """``method`` ``path`` with a JSON body; the decoded JSON answer (None if empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise AssertionError(
                f"{self.label}: {method} {path} -> {exc.code} {detail}\n{self.describe()}"
            ) from exc
        return json.loads(raw) if raw.strip() else None


class Alertmanager(_Peer):
    """``prometheus-alertmanager`` with one webhook receiver.

    ``group_by=("...",)`` (the default) groups by every label, so each alert is its own
    notification; pass e.g. ``("alertname",)`` with a ``group_wait`` such as ``"1s"`` to get
    several alerts in one notification. ``token`` sends ``Authorization: Bearer <token>``;
    ``basic_auth=(user, password)`` sends basic auth; neither sends no Authorization header.
    """

    label = "alertmanager"
    binary_name = ALERTMANAGER_BINARY

    def __init__(
        self,
        webhook_url: str,
        *,
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        group_by: Sequence[str] = ("...",),
        group_wait: str = "0s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        receiver: str = "infraai",
        max_alerts: int = 0,
        port: int | None = None,
        workdir: str | Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        if token is not None and basic_auth is not None:
            raise ValueError("token and basic_auth are mutually exclusive (as in Alertmanager)")
        self.webhook_url = webhook_url
        self.token = token
        self.basic_auth = basic_auth
        self.group_by = list(group_by)
        self.group_wait = group_wait
        self.group_interval = group_interval
        self.repeat_interval = repeat_interval
        self.receiver = receiver
        self.max_alerts = max_alerts
        self._posted: dict[frozenset[tuple[str, str]], dict[str, Any]] = {}
        super().__init__(port=port, workdir=workdir, extra_args=extra_args)
        self.config_path = self.workdir / "alertmanager.yml"
        self.storage_path = self.workdir / "data"

    def config(self) -> dict[str, Any]:
        """The alertmanager.yml this instance runs with."""
        webhook: dict[str, Any] = {
            "url": self.webhook_url,
            "send_resolved": True,
            "max_alerts": self.max_alerts,
        }
        if self.token is not None:
            webhook["http_config"] = {
                "authorization": {"type": "Bearer", "credentials": self.token}
            }
        elif self.basic_auth is not None:
            user, password = self.basic_auth
            webhook["http_config"] = {"basic_auth": {"username": user, "password": password}}
        return {
            "route": {
                "receiver": self.receiver,
                "group_by": self.group_by,
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": self.receiver, "webhook_configs": [webhook]}],
        }

    def _write_config(self) -> None:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
            f"--web.external-url={self.url}",
            *self.extra_args,
        ]

    def start(self) -> Alertmanager:
        super().start()
        return self

    def __enter__(self) -> Alertmanager:
        return self.start()

    # -- the fast path -----------------------------------------------------------------------

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``POST /api/v2/alerts``; returns the bodies sent.

        Each alert is a mapping with ``labels`` (required), and optional ``annotations``,
        ``startsAt``/``endsAt`` (datetime or RFC 3339 string) and ``generatorURL``. A missing
        ``startsAt`` is set to now (and remembered, so :meth:`resolve` keeps it).
        """
        now = datetime.now(UTC)
        body = []
        for alert in alerts:
            labels = {str(k): str(v) for k, v in alert["labels"].items()}
            key = frozenset(labels.items())
            known = self._posted.get(key)
            starts = alert.get("startsAt") or (known["startsAt"] if known else now)
            item: dict[str, Any] = {
                "labels": labels,
                "annotations": {str(k): str(v) for k, v in alert.get("annotations", {}).items()},
                "startsAt": rfc3339(starts),
            }
            if alert.get("endsAt"):
                item["endsAt"] = rfc3339(alert["endsAt"])
            if alert.get("generatorURL"):
                item["generatorURL"] = alert["generatorURL"]
            body.append(item)
        self.request("POST", "/api/v2/alerts", body)
        for item in body:
            key = frozenset(item["labels"].items())
            if "endsAt" in item and _as_datetime(item["endsAt"]) <= now:
                self._posted.pop(key, None)
            else:
                self._posted[key] = item
        return body

    def resolve(
        self,
        labels: Mapping[str, str] | Sequence[Mapping[str, str]],
        ends_at: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Re-post alert(s) with these labels with ``endsAt`` now (or ``ends_at``).

        Annotations, ``startsAt`` and ``generatorURL`` of an alert posted through
        :meth:`post_alerts` are sent again (Alertmanager keeps the newest copy's annotations).
        """
        label_sets = [labels] if isinstance(labels, Mapping) else list(labels)
        ends = ends_at or datetime.now(UTC)
        alerts = []
        for label_set in label_sets:
            clean = {str(k): str(v) for k, v in label_set.items()}
            known = self._posted.get(frozenset(clean.items()))
            alert: dict[str, Any] = dict(known) if known else {"labels": clean}
            starts = _as_datetime(alert.get("startsAt") or ends - timedelta(seconds=1))
            alert["startsAt"] = min(starts, ends)
            alert["endsAt"] = ends
            alerts.append(alert)
        return self.post_alerts(alerts)

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (``filters`` become query parameters, e.g. active="true")."""
        query = f"?{urllib.parse.urlencode(filters)}" if filters else ""
        result = self.request("GET", f"/api/v2/alerts{query}")
        return list(result or [])


class Prometheus(_Peer):
    """``prometheus`` evaluating ``rules`` every second and sending to ``alertmanager``.

    ``scrape`` maps a job name to its target address(es), e.g.
    ``{"missing": f"127.0.0.1:{free_port()}"}`` (nothing listens, so ``up == 0``).
    ``alertmanager`` is an :class:`Alertmanager` (started first) or a ``host:port``.
    """

    label = "prometheus"
    binary_name = PROMETHEUS_BINARY

    def __init__(
        self,
        *,
        rules: str | None = None,
        alertmanager: Alertmanager | str | None = None,
        scrape: Mapping[str, str | Sequence[str]] | None = None,
        evaluation_interval: str = "1s",
        scrape_interval: str = "1s",
        resend_delay: str = "1s",
        port: int | None = None,
        workdir: str | Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.rules = rules
        self.alertmanager = alertmanager
        self.scrape = {
            job: [targets] if isinstance(targets, str) else list(targets)
            for job, targets in (scrape or {}).items()
        }
        self.evaluation_interval = evaluation_interval
        self.scrape_interval = scrape_interval
        self.resend_delay = resend_delay
        super().__init__(port=port, workdir=workdir, extra_args=extra_args)
        self.config_path = self.workdir / "prometheus.yml"
        self.rules_path = self.workdir / "rules.yml"
        self.storage_path = self.workdir / "data"

    def _alertmanager_address(self) -> str | None:
        am = self.alertmanager
        if am is None:
            return None
        if isinstance(am, Alertmanager):
            return am.address
        return am.removeprefix("http://").rstrip("/")

    def config(self) -> dict[str, Any]:
        """The prometheus.yml this instance runs with."""
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in self.scrape.items()
            ],
        }
        if self.rules is not None:
            config["rule_files"] = [str(self.rules_path)]
        am = self._alertmanager_address()
        if am is not None:
            config["alerting"] = {
                "alertmanagers": [{"api_version": "v2", "static_configs": [{"targets": [am]}]}]
            }
        return config

    def _write_config(self) -> None:
        self.storage_path.mkdir(parents=True, exist_ok=True)
        if self.rules is not None:
            self.rules_path.write_text(self.rules)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.storage_path}",
            f"--web.listen-address={self.address}",
            f"--rules.alert.resend-delay={self.resend_delay}",
            f"--web.external-url={self.url}",
            *self.extra_args,
        ]

    def start(self) -> Prometheus:
        super().start()
        return self

    def __enter__(self) -> Prometheus:
        return self.start()

    def _api(self, path: str) -> Any:
        answer = self.request("GET", path)
        if not answer or answer.get("status") != "success":
            raise AssertionError(f"prometheus: GET {path} -> {answer}\n{self.describe()}")
        return answer["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the ``data.result`` list (vector results)."""
        data = self._api(f"/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
        return list(data["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v1/alerts``: the pending and firing alerts."""
        return list(self._api("/api/v1/alerts")["alerts"])

    def targets(self) -> list[dict[str, Any]]:
        """``GET /api/v1/targets``: the active targets with health and last error."""
        return list(self._api("/api/v1/targets")["activeTargets"])


async def wait_for(
    predicate: Callable[[], Any],
    *,
    within: float,
    what: str,
    peers: Sequence[_Peer] = (),
    interval: float = 0.05,
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``within`` s pass.

    The deadline only prevents hanging; on expiry the AssertionError names ``what`` and
    carries the log tails of ``peers``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = predicate()
        if result:
            return result
        if loop.time() > deadline:
            details = "\n".join(peer.describe() for peer in peers)
            raise AssertionError(f"timed out after {within:g} s waiting for {what}\n{details}")
        await asyncio.sleep(interval)


def _stop_all(peers: list[_Peer]) -> None:
    errors: list[BaseException] = []
    for peer in reversed(peers):
        try:
            peer.stop()
        except BaseException as exc:  # keep stopping the others
            errors.append(exc)
        # Shown by pytest under "Captured stderr teardown" only when the test failed.
        print(peer.describe(), file=sys.stderr)
    if errors:
        raise errors[0]


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    """``alertmanager_factory(webhook_url, **Alertmanager kwargs)`` → a started Alertmanager."""
    started: list[_Peer] = []

    def make(webhook_url: str, **kwargs: Any) -> Alertmanager:
        kwargs.setdefault("workdir", tmp_path / f"alertmanager-{len(started)}")
        peer = Alertmanager(webhook_url, **kwargs)
        started.append(peer)
        return peer.start()

    try:
        yield make
    finally:
        _stop_all(started)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """``prometheus_factory(rules=…, alertmanager=…, scrape=…)`` → a started Prometheus."""
    started: list[_Peer] = []

    def make(**kwargs: Any) -> Prometheus:
        kwargs.setdefault("workdir", tmp_path / f"prometheus-{len(started)}")
        peer = Prometheus(**kwargs)
        started.append(peer)
        return peer.start()

    try:
        yield make
    finally:
        _stop_all(started)
