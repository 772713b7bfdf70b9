"""Graphs are real PNGs of a fixed size, drawn off the event loop, with or without data."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from core.graph import HEIGHT_PX, WIDTH_PX, GraphSpec, png_size, render, render_png
from core.promql import Series

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _series(n: int, points: int = 240) -> list[Series]:
    start = (NOW - timedelta(hours=1)).timestamp()
    return [
        Series(
            f'node_memory_Active_bytes{{instance="host-{i}:9100"}}',
            [(start + 15 * k, 1e9 * (i + 1) + 1e8 * math.sin(k / 9)) for k in range(points)],
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "spec",
    [
        GraphSpec("ten series", "last 1h", _series(10), "bytes", NOW - timedelta(minutes=20)),
        GraphSpec("no data", "last 1h", [], window=(NOW - timedelta(hours=1), NOW)),
        GraphSpec("one point", "", _series(1, points=1), "seconds"),
        GraphSpec("a hundred series, a very long title " * 5, "x" * 300, _series(100, 60)),
    ],
    ids=["ten", "empty", "one-point", "hundred"],
)
def test_every_graph_is_a_png_of_the_expected_size(spec: GraphSpec) -> None:
    png = render_png(spec)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX)
    assert len(png) < 150_000


async def test_render_runs_on_the_graph_thread() -> None:
    png = await render(GraphSpec("t", "", _series(2)))
    assert png_size(png) == (WIDTH_PX, HEIGHT_PX)


def test_png_size_refuses_what_is_not_a_png() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + b"\0" * 30)
