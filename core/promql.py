"""PromQL results shaped for people: the `[range]` of a command, a step, a bounded table.

Pure functions (no I/O), shared by `/infraai query`, the alert graphs and the assistant's
Prometheus tools, so all three cut results the same way and give the same advice.

A command line is `<promql> [range]`, and PromQL has spaces (`sum by (job) (…)`) and
durations of its own (`rate(x[5m])`, `x offset 1h`): only a *trailing, bare* duration token,
not preceded by `offset`, is the range. Everything else is the expression, as typed.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MAX_SERIES = 100  # series kept of a result; more → cut, with the topk hint
MAX_POINTS = 250  # points per series a range query asks for (the step follows)
DEFAULT_RANGE = timedelta(hours=1)
MAX_RANGE = timedelta(days=31)
MIN_RANGE = timedelta(minutes=1)
TABLE_ROWS = 10  # rows a chat table shows; the rest is counted
TOPK_HINT = "narrow it with a label filter or `topk(10, …)`"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^(?:[0-9]+[smhdwy])+$")
_TRAILING = re.compile(r"^(.*\S)\s+(\S+)$", re.DOTALL)
_PART = re.compile(r"([0-9]+)([smhdwy])")
# Steps a person reads easily; the smallest one giving at most MAX_POINTS points is used.
_NICE_STEPS = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


class QueryInputError(ValueError):
    """What was typed cannot be asked (no expression, a range out of bounds); one line."""


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `6h`, `1h30m`, `2d` → timedelta; anything else → None."""
    if not _DURATION.match(text):
        return None
    try:
        return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _PART.findall(text)))
    except OverflowError:  # `99999999999999y`: longer than any range can be
        return timedelta.max


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def split_range(text: str) -> tuple[str, timedelta | None]:
    """`<promql> [range]` → (expression, range or None). Only a trailing bare duration token
    is a range, and not the one of `offset 5m`: `rate(x[5m])` and `x offset 1h` stay whole."""
    text = text.strip()
    found = _TRAILING.match(text)
    if found is None:
        return text, None
    head, last = found.group(1), found.group(2)
    duration = parse_duration(last)
    if duration is None or head.split()[-1].lower() == "offset":
        return text, None
    return head.strip(), duration


def parse_query_args(text: str) -> tuple[str, timedelta | None]:
    """The command's arguments checked: a non-empty expression and a range within bounds."""
    expr, window = split_range(text)
    if not expr:
        raise QueryInputError("Query what? Give a PromQL expression.")
    if window is not None and not MIN_RANGE <= window <= MAX_RANGE:
        raise QueryInputError(
            f"The range must be between {format_duration(MIN_RANGE)} and "
            f"{format_duration(MAX_RANGE)}, not {format_duration(window)}."
        )
    return expr, window


def step_for(window: timedelta) -> int:
    """Seconds between points: the smallest readable step giving at most MAX_POINTS."""
    wanted = window.total_seconds() / MAX_POINTS
    for step in _NICE_STEPS:
        if step >= wanted:
            return step
    return math.ceil(wanted)


def expression_of(generator_url: str | None) -> str | None:
    """The `g0.expr` of an alert's generatorURL (Prometheus' graph link), if it has one."""
    if not generator_url or "g0.expr=" not in generator_url:
        return None
    query = urllib.parse.urlsplit(generator_url).query
    found = urllib.parse.parse_qs(query).get("g0.expr")
    expr = found[0].strip() if found else ""
    return expr or None


# ---- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    label: str  # `{job="api", instance="…"}`, or the metric name with them
    points: list[tuple[float, float]]  # (unix time, value); NaN kept as a gap

    @property
    def last(self) -> float:
        return self.points[-1][1] if self.points else math.nan

    @property
    def peak(self) -> float:
        values = [v for _, v in self.points if not math.isnan(v)]
        return max(values) if values else -math.inf


@dataclass(frozen=True)
class Shaped:
    """A result bounded for chat: at most MAX_SERIES series, `total` of them before the cut."""

    kind: str  # vector, matrix, scalar, string
    series: list[Series]
    total: int
    at: float | None = None  # evaluation time of an instant result
    notes: list[str] = field(default_factory=list)
    text: str | None = None  # a string result's value

    @property
    def cut(self) -> bool:
        return self.total > len(self.series)


def series_label(metric: dict[str, str], expr: str = "") -> str:
    """`name{a="b", c="d"}` as Prometheus prints it; an empty label set is the expression."""
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    name = metric.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    if not name and not inner:
        return expr or "{}"
    return f"{name}{{{inner}}}" if inner else name


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def shape(data: Any, expr: str = "", max_series: int = MAX_SERIES) -> Shaped:
    """The API's `data` member as at most `max_series` series, the largest first (what a
    person looks at first), with the number there were."""
    kind = str(data.get("resultType", "")) if isinstance(data, dict) else ""
    result = data.get("result") if isinstance(data, dict) else None
    if kind in ("scalar", "string") and isinstance(result, list) and len(result) == 2:
        value = result[1] if kind == "scalar" else math.nan
        series = Series(expr or kind, [(_number(result[0]), _number(value))])
        text = None if kind == "scalar" else str(result[1])[:500]
        return Shaped(kind, [series], 1, at=_number(result[0]), text=text)
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        return Shaped(kind or "unknown", [], 0)
    found: list[Series] = []
    at: float | None = None
    for item in result:
        if not isinstance(item, dict):
            continue
        label = series_label(item.get("metric") or {}, expr)
        if kind == "vector":
            stamp, value = (item.get("value") or [math.nan, "NaN"])[:2]
            at = _number(stamp)
            found.append(Series(label, [(_number(stamp), _number(value))]))
        else:
            points = [(_number(t), _number(v)) for t, v in item.get("values") or []]
            found.append(Series(label, points))
    found.sort(key=lambda s: (-s.peak if not math.isinf(s.peak) else math.inf, s.label))
    kept = found[:max_series]
    notes = []
    if len(found) > len(kept):
        notes.append(f"{len(found)} series; showing the {len(kept)} largest: {TOPK_HINT}")
    return Shaped(kind, kept, len(found), at=at, notes=notes)


def format_value(value: float) -> str:
    """A value as a person reads it: 3 significant digits, k/M/G for large magnitudes."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    magnitude = abs(value)
    if magnitude >= 1e15:
        return f"{value:.3g}"
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if magnitude and magnitude < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def table_rows(shaped: Shaped, limit: int = TABLE_ROWS) -> list[tuple[str, str]]:
    """(series, last value) for a chat table, the first `limit` series."""
    if shaped.text is not None:
        return [(s.label, shaped.text) for s in shaped.series[:1]]
    return [(s.label, format_value(s.last)) for s in shaped.series[:limit]]


def unit_of(expr: str) -> str:
    """The unit the expression's metric names suggest (Prometheus naming conventions), for
    the graph's axis: `bytes`, `seconds`, `ratio` or ``."""
    names = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
    for name in reversed(names):
        base = name.removesuffix("_total").removesuffix("_sum").removesuffix("_count")
        for unit in ("bytes", "seconds", "ratio"):
            if base.endswith("_" + unit):
                return unit
    return ""


def describe_window(end: datetime, window: timedelta) -> str:
    return f"last {format_duration(window)} to {end:%Y-%m-%d %H:%M}Z"
