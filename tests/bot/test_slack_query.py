"""`/infraai query`'s Slack message: within Block Kit's limits whatever Prometheus returns,
and outside text (the expression, label values) never live markup."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.slack.query import query_message
from core.commands import QueryResult
from tests.bot.test_slack_blocks import assert_within_limits
from tests.bot.test_slack_escaping import HOSTILE, assert_inert, texts


def result(**overrides: object) -> QueryResult:
    values: dict[str, object] = {
        "expr": "up",
        "window": "1h",
        "kind": "vector",
        "rows": [("1", 'up{job="api"}')],
        "total": 1,
        "png": b"\x89PNG\r\n\x1a\n",
    }
    values.update(overrides)
    return QueryResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reply",
    [
        result(expr=f"up{{job=~'{HOSTILE}'}}"),
        result(rows=[("1", f'up{{job="{HOSTILE}"}}')]),
        result(notes=[f"no graph: Prometheus: bad_data: {HOSTILE}"]),
    ],
    ids=["expression", "label", "note"],
)
def test_outside_text_stays_text(reply: QueryResult) -> None:
    text, blocks = query_message(reply, "U0ALICE")
    assert_inert([text, *texts(blocks)])
    assert_within_limits(blocks, text)


def test_absurd_results_keep_the_limits() -> None:
    reply = result(
        expr="x" * 4000,
        rows=[("1.23k", "s" * 5000)] * 10,
        total=10_000,
        notes=["n" * 5000] * 20,
    )
    text, blocks = query_message(reply, "U0ALICE", ephemeral=True)
    assert_within_limits(blocks, text)
    shown = "\n".join(texts(blocks))
    assert "9990 more series" in shown and "once InfraAI may post here" in shown


def test_no_data_says_so() -> None:
    _text, blocks = query_message(result(rows=[], total=0, png=None))
    assert "matches no series now" in "\n".join(texts(blocks))


def test_querying_and_graph_modules_load_without_matplotlib() -> None:
    """matplotlib is imported when a graph is drawn, not when the code that draws is loaded."""
    probe = (
        "import sys, core.query, core.alert_graph, core.agent.prometheus_tools, bot.slack.query;"
        "import adapters.prometheus, core.runtime;"
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
