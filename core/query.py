"""`/infraai query <promql> [range]`: the value now, and a graph of the range.

The instant query (the table) and the range query (the graph) go to Prometheus together.
A bad expression is Prometheus' own message; Prometheus down or not configured is one line;
an expression that is valid instantly but not over a range (a string) still gets its table.
The graph is drawn on the graph thread (`core.graph.render`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

from core.commands import Error, QueryResult, Reply
from core.execution.integrations import Integrations
from core.graph import GraphSpec, finite, render
from core.ports import IntegrationError, NotConfigured, integration_error
from core.promql import (
    DEFAULT_RANGE,
    QueryInputError,
    describe_window,
    format_duration,
    parse_query_args,
    shape,
    step_for,
    table_rows,
    unit_of,
)

log = logging.getLogger(__name__)

USAGE = "query <promql> [range]   e.g. query rate(http_requests_total[5m]) 6h"
RENDER_TIMEOUT = 20.0


async def run_query(integrations: Integrations, text: str, now: datetime | None = None) -> Reply:
    try:
        expr, window = parse_query_args(text)
    except QueryInputError as exc:
        return Error(str(exc), usage=USAGE)
    window = window or DEFAULT_RANGE
    try:
        prometheus = integrations.prometheus()
    except NotConfigured as exc:
        return Error(str(exc))
    end = now or datetime.now(UTC)
    start = end - window
    step = step_for(window)
    instant, ranged = await asyncio.gather(
        prometheus.query(expr, end),
        prometheus.query_range(expr, start, end, step),
        return_exceptions=True,
    )
    if isinstance(instant, BaseException):
        return Error(_message(instant))
    table = shape(instant.data, expr)
    notes = list(table.notes)
    png: bytes | None = None
    span = format_duration(window)
    if isinstance(ranged, BaseException):
        notes.append(f"no graph: {_message(ranged)}")
    else:
        drawn = shape(ranged.data, expr)
        if drawn.cut and not table.cut:
            notes.extend(drawn.notes)
        if finite(drawn.series):
            every = format_duration(timedelta(seconds=step))
            spec = GraphSpec(
                title=expr,
                subtitle=f"{describe_window(end, window)} · step {every} · {drawn.total} series",
                series=drawn.series,
                unit=unit_of(expr),
                window=(start, end),
            )
            try:
                async with asyncio.timeout(RENDER_TIMEOUT):
                    png = await render(spec)
            except TimeoutError:
                notes.append("no graph: drawing it took too long")
        else:
            notes.append(f"no graph: no data in the last {span}")
    return QueryResult(
        expr=expr,
        window=span,
        kind=table.kind,
        rows=[(value, label) for label, value in table_rows(table)],
        total=table.total,
        notes=notes,
        png=png,
        filename=_filename(expr, end),
        title=f"{expr} · last {span}",
    )


def _message(exc: BaseException) -> str:
    """What a person reads: the integration's one line; a bug is logged, not shown."""
    if isinstance(exc, IntegrationError):
        return exc.message
    translated = integration_error(exc)
    if translated is not None:
        return translated.message
    log.error("query failed unexpectedly", exc_info=exc)
    return f"the query failed ({type(exc).__name__}); it has been logged"


def _filename(expr: str, end: datetime) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", expr).strip("-")[:40] or "query"
    return f"{slug}-{end:%Y%m%d-%H%M%S}.png"
