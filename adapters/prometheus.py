"""Prometheus: PromQL instant and range queries over the HTTP API v1, and a readiness check.

Queries are asynchronous (aiohttp): a graph for an alert or a `/infraai query` waits on the
network, not on a thread. Each call opens its own short-lived session, so the adapter can
serve several event loops (the bot's, a test's) and holds nothing that needs an async close.
The health check is synchronous because the health monitor runs it on a thread of its own
with a deadline.

Prometheus explains a bad query itself (`parse error: unexpected …`): that text is what the
person sees, one line, never our traceback. Bodies are read up to a bound: a query matching
every series of a large server must fail with advice, not fill the bot's memory.
Imports nothing of InfraAI's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from adapters.urls import without_credentials

MAX_BODY_BYTES = 16 * 1024 * 1024
QUERY_TIMEOUT = 10.0
HEALTH_TIMEOUT = 3.0
PARSE_INLINE_BYTES = 256 * 1024  # larger results are decoded on a thread


class PrometheusError(Exception):
    """A query failed. `reason`: bad_query, unreachable, timeout, too_large, server_error;
    `transient` when asking again later may succeed."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.transient = transient


class PrometheusNotConfigured(Exception):
    """PROMETHEUS_URL is unset or not an http(s) URL."""


@dataclass(frozen=True)
class PrometheusOutcome:
    """`data` is the API's `data` member: `{"resultType": …, "result": …}`."""

    summary: str
    data: Any
    request: str | None = None
    dry_run: bool = False


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _stamp(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"


class PrometheusAdapter:
    def __init__(self, base_url: str, *, timeout: float = QUERY_TIMEOUT) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise PrometheusNotConfigured("PROMETHEUS_URL must start with http:// or https://")
        try:
            self.base_url, basic = without_credentials(base_url.rstrip("/"))
        except ValueError:  # a port that is not a number
            raise PrometheusNotConfigured("PROMETHEUS_URL is not a valid URL") from None
        self._auth_header = (
            "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            if basic
            else None
        )
        self.timeout = timeout

    async def query(self, expr: str, at: datetime | None = None) -> PrometheusOutcome:
        """`GET /api/v1/query`: the value of `expr` at `at` (default: now)."""
        form = {"query": expr}
        if at is not None:
            form["time"] = _stamp(at)
        data = await self._call("/api/v1/query", form)
        return PrometheusOutcome(_summary(data), data)

    async def query_range(
        self,
        expr: str,
        start: datetime,
        end: datetime,
        step_seconds: float,
    ) -> PrometheusOutcome:
        """`GET /api/v1/query_range`: `expr` from `start` to `end`, one point per step."""
        form = {
            "query": expr,
            "start": _stamp(start),
            "end": _stamp(end),
            "step": f"{step_seconds:g}",
        }
        data = await self._call("/api/v1/query_range", form)
        return PrometheusOutcome(_summary(data), data)

    async def _call(self, path: str, form: dict[str, str]) -> Any:
        limit = self.timeout
        # Prometheus stops evaluating at its own `timeout`; ours covers the network too.
        form = {**form, "timeout": f"{limit:g}s"}
        url = self.base_url + path
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=limit),
                    headers={"Authorization": self._auth_header} if self._auth_header else None,
                ) as session,
                session.post(url, data=form) as response,
            ):
                body = await _read_bounded(response)
                status = response.status
        except TimeoutError:
            raise PrometheusError(
                "timeout", f"Prometheus did not answer within {limit:g} s", transient=True
            ) from None
        except aiohttp.ClientError as exc:
            raise PrometheusError(
                "unreachable",
                f"Prometheus at {self.base_url} is unreachable ({type(exc).__name__})",
                transient=True,
            ) from None
        if len(body) > PARSE_INLINE_BYTES:  # a big result is decoded off the event loop
            return await asyncio.to_thread(_parse, status, body)
        return _parse(status, body)

    def health(self) -> tuple[bool, str]:
        request = urllib.request.Request(self.base_url + "/-/ready")
        if self._auth_header:
            request.add_header("Authorization", self._auth_header)
        try:
            with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT) as response:
                ok = response.status == 200
                answer = _one_line(response.read(200).decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            return False, f"Prometheus at {self.base_url} is not ready (HTTP {exc.code})"
        except (OSError, ValueError) as exc:
            return False, f"Prometheus at {self.base_url} is unreachable ({type(exc).__name__})"
        if not ok:
            return False, f"Prometheus at {self.base_url} is not ready: {answer}"
        return True, f"Prometheus at {self.base_url} is ready"

    def close(self) -> None:
        """Nothing held between calls."""


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PrometheusError(
                "too_large",
                f"the result is over {MAX_BODY_BYTES // (1024 * 1024)} MB: narrow the query "
                "(a label filter, topk(10, …), a shorter range)",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(status: int, body: bytes) -> Any:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("status") == "success":
        return document.get("data") or {}
    if isinstance(document, dict) and document.get("error"):
        # Prometheus' own words: "bad_data: 1:5: parse error: unexpected <op:->".
        kind = str(document.get("errorType") or "error")
        message = f"Prometheus: {kind}: {_one_line(str(document['error']))}"
        if kind in ("bad_data", "execution") or status in (400, 422):
            raise PrometheusError("bad_query", message)
        raise PrometheusError("server_error", message, transient=status >= 500 or kind == "timeout")
    text = _one_line(body.decode("utf-8", "replace"), 120)
    raise PrometheusError(
        "server_error",
        f"Prometheus answered HTTP {status}" + (f": {text}" if text else ""),
        transient=status >= 500 or status == 429,
    )


def _summary(data: Any) -> str:
    kind = data.get("resultType", "?") if isinstance(data, dict) else "?"
    result = data.get("result") if isinstance(data, dict) else None
    if kind in ("vector", "matrix") and isinstance(result, list):
        return f"{len(result)} series ({kind})"
    return kind
