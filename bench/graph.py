"""Drawing one graph: `core.graph.render_png` against a bare matplotlib plot of the same data.

Realistic data: 10 series × 240 points (an hour at a 15 s step), as an alert's graph or
`/infraai query … 1h` draws it. Each render is timed N times after one warm-up (the first
render pays matplotlib's import and font cache); the table shows p50 and p99 in ms and the
PNG's size. The baseline, in the same run, is the least a PNG of this data costs: the same
Agg figure size, one `plot` per series, `savefig` — no title, legend, formatters or marker.
The difference is what InfraAI's readability costs per graph.

    .venv/bin/python -m bench.graph [--renders 50] [--series 10] [--points 240]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.graph import DPI, HEIGHT_PX, WIDTH_PX, GraphSpec, render_png
from core.promql import Series

END = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def data(series: int, points: int) -> list[Series]:
    start = END.timestamp() - 15 * points
    return [
        Series(
            f'node_memory_Active_bytes{{instance="host-{i:02d}:9100", job="node"}}',
            [
                (start + 15 * k, 1e9 * (i + 1) + 2e8 * math.sin(k / 12 + i) + 1e7 * (k % 7))
                for k in range(points)
            ],
        )
        for i in range(series)
    ]


def bare(series: list[Series]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for s in series:
        axes.plot([t for t, _ in s.points], [v for _, v in s.points])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def timed(draw: Callable[[], bytes], renders: int) -> tuple[float, float, int]:
    size = len(draw())  # warm-up: imports, font cache
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        draw()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, math.ceil(len(times) * 0.99) - 1)]
    return statistics.median(times), p99, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=50)
    parser.add_argument("--series", type=int, default=10)
    parser.add_argument("--points", type=int, default=240)
    args = parser.parse_args()
    series = data(args.series, args.points)
    spec = GraphSpec(
        title="HighMemory: node_memory_Active_bytes > 1e9",
        subtitle=f"last 1h to {END:%Y-%m-%d %H:%M}Z · {len(series)} series",
        series=series,
        unit="bytes",
        marker=END - timedelta(minutes=20),
        window=(END - timedelta(seconds=15 * args.points), END),
    )
    rows = [
        ("bare matplotlib plot (baseline)", lambda: bare(series)),
        ("core.graph.render_png", lambda: render_png(spec)),
    ]
    print(
        f"{args.renders} renders each after one warm-up; {args.series} series × {args.points} "
        f"points; {WIDTH_PX}×{HEIGHT_PX} PNG"
    )
    print()
    print("| render | p50 ms | p99 ms | PNG KB |")
    print("| --- | ---: | ---: | ---: |")
    for label, draw in rows:
        p50, p99, size = timed(draw, args.renders)
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {size / 1024:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
