"""PromQL shaping, by tables: what `[range]` is, the step, the cut at 100 series with the topk
hint, values as people read them, and the expression inside an alert's generatorURL."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from core.promql import (
    MAX_POINTS,
    MAX_SERIES,
    QueryInputError,
    expression_of,
    format_value,
    parse_query_args,
    shape,
    split_range,
    step_for,
    table_rows,
    unit_of,
)


@pytest.mark.parametrize(
    ("text", "expr", "window"),
    [
        ("up", "up", None),
        ("up 30m", "up", timedelta(minutes=30)),
        ("up 6h", "up", timedelta(hours=6)),
        ("up 2d", "up", timedelta(days=2)),
        ("up 1h30m", "up", timedelta(minutes=90)),
        ("up\t2h", "up", timedelta(hours=2)),
        ("rate(http_requests_total[5m])", "rate(http_requests_total[5m])", None),
        ("rate(http_requests_total[5m]) 6h", "rate(http_requests_total[5m])", timedelta(hours=6)),
        ("sum by (job) (rate(x[5m])) 1h", "sum by (job) (rate(x[5m]))", timedelta(hours=1)),
        ("x offset 1h", "x offset 1h", None),
        ("x OFFSET 5m", "x OFFSET 5m", None),
        ("x offset 1h 2d", "x offset 1h", timedelta(days=2)),
        ("max_over_time(x[1h:5m])", "max_over_time(x[1h:5m])", None),
        ('up{job="a b"} 10m', 'up{job="a b"}', timedelta(minutes=10)),
        ("5m", "5m", None),  # a lone token is the expression
        ("up 5", "up 5", None),  # not a duration
        ("up [5m]", "up [5m]", None),
    ],
)
def test_only_a_trailing_bare_duration_is_the_range(text, expr, window) -> None:
    assert split_range(text) == (expr, window)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Query what?"),
        ("   ", "Query what?"),
        ("up 10s", "between 1m and 31d"),
        ("up 60d", "between 1m and 31d"),
    ],
)
def test_bad_arguments_are_one_line(text, message) -> None:
    with pytest.raises(QueryInputError, match=message):
        parse_query_args(text)


@pytest.mark.parametrize(
    ("window", "step"),
    [
        (timedelta(minutes=1), 1),
        (timedelta(minutes=30), 15),
        (timedelta(hours=1), 15),
        (timedelta(hours=6), 120),
        (timedelta(days=2), 900),
        (timedelta(days=31), 10800),
    ],
)
def test_the_step_keeps_points_bounded(window, step) -> None:
    assert step_for(window) == step
    assert window.total_seconds() / step <= MAX_POINTS


def _vector(n: int) -> dict:
    return {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "m", "i": str(i)}, "value": [1700000000, str(i)]}
            for i in range(n)
        ],
    }


def test_more_than_100_series_are_cut_to_the_largest_with_the_topk_hint() -> None:
    shaped = shape(_vector(250), "m")
    assert shaped.total == 250 and len(shaped.series) == MAX_SERIES and shaped.cut
    assert shaped.series[0].label == 'm{i="249"}'  # the largest first
    assert shaped.series[-1].label == 'm{i="150"}'
    assert "250 series" in shaped.notes[0] and "topk(10, …)" in shaped.notes[0]


def test_a_small_result_is_whole_and_says_nothing() -> None:
    shaped = shape(_vector(3), "m")
    assert (shaped.total, shaped.cut, shaped.notes) == (3, False, [])
    assert table_rows(shaped) == [('m{i="2"}', "2"), ('m{i="1"}', "1"), ('m{i="0"}', "0")]


def test_scalars_strings_and_matrices() -> None:
    scalar = shape({"resultType": "scalar", "result": [1700000000, "0.5"]}, "scalar(up)")
    assert table_rows(scalar) == [("scalar(up)", "0.5")]
    text = shape({"resultType": "string", "result": [1700000000, "hi"]}, '"hi"')
    assert table_rows(text) == [('"hi"', "hi")]
    matrix = shape(
        {
            "resultType": "matrix",
            "result": [{"metric": {}, "values": [[1, "1"], [2, "NaN"], [3, "3"]]}],
        },
        "sum(x)",
    )
    [series] = matrix.series
    assert series.label == "sum(x)" and series.last == 3 and math.isnan(series.points[1][1])


def test_garbage_is_an_empty_result_not_a_crash() -> None:
    for data in (None, {}, {"resultType": "vector", "result": "x"}, {"resultType": "?"}):
        assert shape(data).series == []


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (1.0, "1"),
        (0.054123, "0.05412"),
        (1234.0, "1.23k"),
        (5.5e9, "5.5G"),
        (1.8e19, "1.8e+19"),
        (0.00001, "1.00e-05"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
    ],
)
def test_values_read_as_people_read_them(value, text) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("expr", "unit"),
    [
        ("node_memory_Active_bytes", "bytes"),
        ("rate(http_request_duration_seconds_sum[5m])", "seconds"),
        ("up == 0", ""),
        ("rate(node_network_receive_bytes_total[5m])", "bytes"),
    ],
)
def test_units_from_metric_names(expr, unit) -> None:
    assert unit_of(expr) == unit


@pytest.mark.parametrize(
    ("url", "expr"),
    [
        (
            "http://127.0.0.1:9090/graph?g0.expr=up%7Bjob%3D%22checkout%22%7D+%3D%3D+0&g0.tab=1",
            'up{job="checkout"} == 0',
        ),
        ("http://127.0.0.1:9090/graph", None),
        ("http://127.0.0.1:9090/graph?g0.expr=&g0.tab=1", None),
        (None, None),
        ("", None),
    ],
)
def test_the_expression_of_a_generator_url(url, expr) -> None:
    assert expression_of(url) == expr


def test_a_range_past_what_a_timedelta_holds_is_out_of_bounds_not_a_crash() -> None:
    from core.promql import QueryInputError, parse_duration, parse_query_args

    assert parse_duration("99999999999999y") == timedelta.max
    with pytest.raises(QueryInputError, match="The range must be between"):
        parse_query_args("up 99999999999999y")
