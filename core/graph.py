"""PNG graphs of PromQL series, drawn for Slack's image preview.

matplotlib is imported here only when a graph is drawn (it costs ~0.3 s and the CLI must
stay instant), with the headless Agg backend and the object API (`Figure`, no pyplot): no
global figure state, so a render in a thread cannot disturb another. Renders run on one
thread of their own (`render`), never on the event loop and never on the adapter or default
executors; one at a time is plenty (a render takes tens of milliseconds) and keeps two
cores shared with everything else free.

Readable at Slack's preview size (about 360 px high): a fixed 800×400 image, a title and
the time window, the unit on the axis (from the metric name), a legend of the largest
series only, and a dashed line where an alert started.
"""

from __future__ import annotations

import asyncio
import io
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.promql import Series, format_value

WIDTH_PX, HEIGHT_PX, DPI = 800, 400, 100
LEGEND_MAX = 5  # series named in the legend; the others are drawn and counted
TITLE_CHARS = 90

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class GraphSpec:
    title: str
    subtitle: str
    series: list[Series]
    unit: str = ""  # bytes, seconds, ratio or ""
    marker: datetime | None = None  # a vertical line: when the alert started
    marker_label: str = "alert started"
    window: tuple[datetime, datetime] | None = None  # the x axis, whatever the data covers


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tick_formatter(unit: str) -> Any:
    from matplotlib.ticker import FuncFormatter

    def bytes_(value: float, _pos: object) -> str:
        for limit, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= limit:
                return f"{value / limit:.3g} {suffix}"
        return f"{value:.3g} B"

    def seconds(value: float, _pos: object) -> str:
        if value and abs(value) < 1:
            return f"{value * 1000:.3g} ms"
        return f"{value:.3g} s"

    def ratio(value: float, _pos: object) -> str:
        return f"{value * 100:.3g}%"

    def plain(value: float, _pos: object) -> str:
        return format_value(value)

    chosen = {"bytes": bytes_, "seconds": seconds, "ratio": ratio}.get(unit, plain)
    return FuncFormatter(chosen)


def render_png(spec: GraphSpec) -> bytes:
    """The graph as PNG bytes, WIDTH_PX × HEIGHT_PX (synchronous: call it off the loop)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import dates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    figure.subplots_adjust(left=0.1, right=0.98, top=0.86, bottom=0.12)
    figure.suptitle(_short(spec.title, TITLE_CHARS), x=0.01, y=0.975, ha="left", fontsize=11)
    axes.set_title(_short(spec.subtitle, 120), loc="left", fontsize=8, color="#555555")

    spans: list[float] = []
    for index, series in enumerate(spec.series):
        times = [_days(t) for t, _ in series.points]
        values = [v for _, v in series.points]
        spans.extend(t for t, _ in series.points[:1] + series.points[-1:])
        label = _short(series.label, 60) if index < LEGEND_MAX else None
        marker = "o" if len(series.points) == 1 else None
        axes.plot(times, values, linewidth=1.3, label=label, marker=marker, markersize=3)
    if spec.marker is not None:
        at = _days(spec.marker.timestamp())
        axes.axvline(at, color="#d62728", linestyle="--", linewidth=1.2)
        axes.annotate(
            f"{spec.marker_label} {spec.marker:%H:%M}Z",
            xy=(at, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="#d62728",
        )
    if not spec.series:
        axes.text(0.5, 0.5, "no data in this range", ha="center", va="center",
                  transform=axes.transAxes, color="#777777")  # fmt: skip
    if spec.window is not None:
        spans = [spec.window[0].timestamp(), spec.window[1].timestamp()]
        axes.set_xlim(_days(spans[0]), _days(spans[1]))
    span = (max(spans) - min(spans)) if spans else 0.0
    if spans and span < 60:  # one instant: a few minutes around it, so the axis has ticks
        axes.set_xlim(_days(min(spans) - 300), _days(max(spans) + 300))
    axes.xaxis_date(UTC)
    locator: Any = dates.AutoDateLocator  # untyped in matplotlib's stubs
    formatter: Any = dates.DateFormatter
    axes.xaxis.set_major_locator(locator(tz=UTC, maxticks=8))
    axes.xaxis.set_major_formatter(formatter("%m-%d %H:%M" if span > 86400 else "%H:%M", UTC))
    axes.yaxis.set_major_formatter(_tick_formatter(spec.unit))
    if spec.unit:
        axes.set_ylabel(spec.unit, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(True, linewidth=0.4, alpha=0.5)
    hidden = len(spec.series) - LEGEND_MAX
    if spec.series:
        handles, labels = axes.get_legend_handles_labels()
        if hidden > 0:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], linestyle="none"))
            labels.append(f"+{hidden} more series")
        axes.legend(handles, labels, loc="upper left", fontsize=7, framealpha=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _days(unix: float) -> float:
    """matplotlib's date numbers (days since 1970-01-01, its default epoch)."""
    return unix / 86400.0


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(1, thread_name_prefix="graph")
        return _pool


async def render(spec: GraphSpec) -> bytes:
    """`render_png(spec)` on the graph thread, awaited from the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), render_png, spec)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if `data` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def finite(series: list[Series]) -> bool:
    """Whether any point has a value to draw."""
    return any(not math.isnan(v) for s in series for _, v in s.points)
