"""The assistant's Prometheus read tools: an instant query and a range query.

Named after the catalogue (`prometheus.query` → `prometheus_query`) with the catalogue's
parameter models. Results are cut as `/infraai query` cuts them (at most 100 series, the
largest first, with the `topk` hint) and a range is summarised per series (min, max, last
and a few evenly spaced points) — a model reads numbers, not 250 points × 100 series.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from core.actions.catalogue import QueryParams, QueryRangeParams
from core.agent.tools import TOOLS, Tool, ToolContext, ToolResult
from core.promql import (
    MAX_POINTS,
    MAX_RANGE,
    MIN_RANGE,
    Shaped,
    format_duration,
    parse_duration,
    shape,
    step_for,
)

SAMPLES = 12  # points of each series the model sees, evenly spaced


async def _prometheus(runtime: Any, call: str, *args: Any) -> Any:
    """The port's query; a fault or a missing setting is the model's information."""
    from core.ports import IntegrationError, NotConfigured

    integrations = runtime.integrations
    try:
        adapter = integrations.prometheus()
        with integrations.faults():
            return await getattr(adapter, call)(*args)
    except NotConfigured as exc:
        return ToolResult("error", message=str(exc))
    except IntegrationError as exc:
        return ToolResult("error", message=exc.message)


def _summary(shaped: Shaped, what: str) -> str:
    return shaped.notes[0] if shaped.notes else f"{shaped.total} series ({what})"


async def _query(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, QueryParams)
    outcome = await _prometheus(runtime, "query", args.query, datetime.now(UTC))
    if isinstance(outcome, ToolResult):
        return outcome
    shaped = shape(outcome.data, args.query)
    if not shaped.series:
        return ToolResult("no data", message=f"{args.query} matches no series now")
    if shaped.text is not None:
        return ToolResult("ok", {"string": shaped.text})
    data = [{"series": s.label, "value": s.last} for s in shaped.series]
    return ToolResult("ok", data, _summary(shaped, "instant"))


async def _query_range(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, QueryRangeParams)
    window = parse_duration(args.range) or timedelta(hours=1)
    if not MIN_RANGE <= window <= MAX_RANGE:
        return ToolResult(
            "error",
            message=f"range must be {format_duration(MIN_RANGE)} to {format_duration(MAX_RANGE)}",
        )
    wanted = parse_duration(args.step) if args.step else None
    step = int(wanted.total_seconds()) if wanted else step_for(window)
    # The same bound on points as the graphs: a tiny step over a long range is raised.
    step = max(step, step_for(window), 1)
    end = datetime.now(UTC)
    outcome = await _prometheus(runtime, "query_range", args.query, end - window, end, step)
    if isinstance(outcome, ToolResult):
        return outcome
    shaped = shape(outcome.data, args.query)
    if not shaped.series:
        return ToolResult("no data", message=f"{args.query}: no data in the last {args.range}")
    data = []
    for s in shaped.series:
        values = [v for _, v in s.points if v == v]  # NaN is not equal to itself
        every = max(1, len(s.points) // SAMPLES)
        data.append(
            {
                "series": s.label,
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "last": s.last,
                "points": [
                    [datetime.fromtimestamp(t, UTC).strftime("%H:%M"), v]
                    for t, v in s.points[::every][:SAMPLES]
                ],
            }
        )
    summary = _summary(shaped, f"last {args.range}, step {step}s, ≤{MAX_POINTS} points")
    return ToolResult("ok", data, summary)


TOOLS.add(
    Tool(
        "prometheus_query",
        "Evaluate a PromQL instant query (current values).",
        QueryParams,
        _query,
        doing="querying Prometheus",
    )
)
TOOLS.add(
    Tool(
        "prometheus_query_range",
        "Evaluate a PromQL query over a range (e.g. 1h): min, max, last and samples.",
        QueryRangeParams,
        _query_range,
        doing="querying Prometheus",
    )
)
