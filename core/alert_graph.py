"""A graph of an alert's expression over the last hour, with the moment it started marked.

Alertmanager's `generatorURL` is Prometheus' graph link (`…/graph?g0.expr=…`): the rule's
expression. People would rather look than read, so the proposal's thread gets that graph.
It is decoration, never a reason to hold anything up: the query and the render each have a
short deadline, and when Prometheus is not configured, down, or the expression yields
nothing, the graph is skipped with a reason (the outbox records it on the row).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.execution.integrations import Integrations
from core.graph import GraphSpec, finite, render
from core.ports import IntegrationError, NotConfigured, integration_error
from core.promql import describe_window, format_duration, shape, step_for, unit_of

WINDOW = timedelta(hours=1)
QUERY_TIMEOUT = 5.0  # seconds: a slow Prometheus costs the channel this much, at most
RENDER_TIMEOUT = 10.0
# After Prometheus failed (down, timed out), graphs are skipped at once for this long: a
# storm of alerts must not pay the query timeout once per alert while the drain waits.
RESTING = 60.0


@dataclass(frozen=True)
class AlertGraph:
    content: bytes
    filename: str
    title: str


@dataclass(frozen=True)
class Skipped:
    reason: str
    quiet: bool = False  # not configured: expected, not worth a warning


class AlertGraphs:
    """Draws alert graphs through the Prometheus port (the outbox drain's helper)."""

    def __init__(self, integrations: Integrations, *, resting: float = RESTING) -> None:
        self.integrations = integrations
        self.resting = resting
        self._failed: tuple[float, str] | None = None  # (monotonic time, why)

    async def draw(
        self, expr: str, alertname: str, starts_at: datetime | None, now: datetime | None = None
    ) -> AlertGraph | Skipped:
        try:
            prometheus = self.integrations.prometheus()
        except NotConfigured as exc:
            return Skipped(str(exc), quiet=True)
        if self._failed is not None and time.monotonic() - self._failed[0] < self.resting:
            return Skipped(f"Prometheus failed a moment ago ({self._failed[1]})")
        end = now or datetime.now(UTC)
        start = end - WINDOW
        step = step_for(WINDOW)
        try:
            async with asyncio.timeout(QUERY_TIMEOUT):
                outcome = await prometheus.query_range(expr, start, end, step)
        except TimeoutError:
            return self._down(f"Prometheus did not answer within {QUERY_TIMEOUT:g} s")
        except Exception as exc:
            translated = exc if isinstance(exc, IntegrationError) else integration_error(exc)
            if translated is None:
                raise
            if translated.transient:
                return self._down(translated.message)
            return Skipped(translated.message)  # this expression, not Prometheus
        self._failed = None
        drawn = shape(outcome.data, expr)
        if not finite(drawn.series):
            return Skipped(f"no data for {expr} in the last {format_duration(WINDOW)}")
        marker = starts_at if starts_at is not None and start <= starts_at <= end else None
        spec = GraphSpec(
            title=f"{alertname}: {expr}" if len(alertname) + len(expr) < 88 else alertname,
            subtitle=(f"{expr} · " if len(alertname) + len(expr) >= 88 else "")
            + f"{describe_window(end, WINDOW)} · {drawn.total} series"
            + (f" · {drawn.notes[0]}" if drawn.notes else ""),
            series=drawn.series,
            unit=unit_of(expr),
            marker=marker,
            window=(start, end),
        )
        try:
            async with asyncio.timeout(RENDER_TIMEOUT):
                content = await render(spec)
        except TimeoutError:
            return Skipped(f"drawing the graph took over {RENDER_TIMEOUT:g} s")
        slug = re.sub(r"[^A-Za-z0-9_]+", "-", alertname).strip("-")[:40] or "alert"
        return AlertGraph(content, f"{slug}-{end:%Y%m%d-%H%M%S}.png", f"{alertname}: {expr}")

    def _down(self, why: str) -> Skipped:
        self._failed = (time.monotonic(), why)
        return Skipped(why)
