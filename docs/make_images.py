"""Make the README's graphs with the real code against a real local Prometheus.

    PYTHONPATH=. .venv/bin/python docs/make_images.py

An hour of a made-up checkout service (three instances; one starts failing 20 minutes
before the end) is written as OpenMetrics, turned into TSDB blocks by `promtool tsdb
create-blocks-from openmetrics`, and served by Debian's `prometheus` on a loopback port.
Then `/infraai query` (`core.query.run_query`) and an alert's graph
(`core.alert_graph.AlertGraphs`) draw `docs/query-graph.png` and `docs/alert-graph.png`,
and the script prints the Slack message each comes with (for the README).
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.render_text import render_query  # noqa: E402
from bot.slack.mrkdwn import unescape  # noqa: E402
from bot.slack.query import query_message  # noqa: E402
from core.alert_graph import AlertGraph, AlertGraphs  # noqa: E402
from core.commands import QueryResult  # noqa: E402
from core.config import Settings  # noqa: E402
from core.execution.integrations import Integrations  # noqa: E402
from core.query import run_query  # noqa: E402
from tests.peers.prometheus_stack import Prometheus  # noqa: E402

QUERY = 'sum by (instance) (rate(http_requests_total{job="checkout", code="500"}[5m])) 1h'
ALERT = "CheckoutErrors"
ALERT_EXPR = 'sum by (instance) (rate(http_requests_total{job="checkout", code="500"}[5m])) > 0.5'
FAILING_FOR = timedelta(minutes=20)
STEP = 15


def openmetrics(end: datetime) -> str:
    """An hour of counters at a 15 s step: requests by instance and code."""
    start = int(end.timestamp()) - 3600
    failing_from = end.timestamp() - FAILING_FOR.total_seconds()
    lines = ["# TYPE http_requests_total counter"]
    for index, instance in enumerate(("checkout-0:8080", "checkout-1:8080", "checkout-2:8080")):
        for code in ("200", "500"):
            total = 0.0
            for k in range(3600 // STEP + 1):
                t = start + k * STEP
                if code == "200":
                    rate = 40 + 8 * index + 6 * math.sin(k / 20 + index)
                else:
                    rate = 0.05 + 0.02 * index
                    if index == 1 and t >= failing_from:  # checkout-1 starts failing
                        rate = 0.6 + min(2.5, (t - failing_from) / 300) + 0.3 * math.sin(k / 3)
                total += rate * STEP
                labels = f'code="{code}",instance="{instance}",job="checkout"'
                lines.append(f"http_requests_total{{{labels}}} {total:.1f} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


async def draw(prometheus: Prometheus, end: datetime) -> tuple[QueryResult, AlertGraph]:
    integrations = Integrations(Settings(prometheus_url=prometheus.url))
    try:
        reply = await run_query(integrations, QUERY, now=end)
        assert isinstance(reply, QueryResult) and reply.png, reply
        alert = await AlertGraphs(integrations).draw(
            ALERT_EXPR, ALERT, end - FAILING_FOR + timedelta(minutes=3), now=end
        )
        assert isinstance(alert, AlertGraph), alert
        return reply, alert
    finally:
        integrations.close()


def main() -> int:
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    with tempfile.TemporaryDirectory(prefix="infraai-docs-") as folder:
        work = Path(folder)
        source = work / "checkout.om"
        source.write_text(openmetrics(end))
        (work / "data").mkdir()
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                str(source),
                str(work / "data"),
            ],
            check=True,
            capture_output=True,
        )
        with Prometheus(workdir=work) as prometheus:
            reply, alert = asyncio.run(draw(prometheus, end))
    (ROOT / "docs" / "query-graph.png").write_bytes(reply.png or b"")
    (ROOT / "docs" / "alert-graph.png").write_bytes(alert.content)
    print("--- console ---")
    print(render_query(reply, "docs/query-graph.png"))
    print("--- Slack (the channel message; the graph is uploaded in its thread) ---")
    _text, blocks = query_message(reply, "U0ALICE")
    for block in blocks:
        texts = [block["text"]["text"]] if "text" in block else []
        texts += [e["text"] for e in block.get("elements", [])]
        print("\n".join(unescape(t) for t in texts))
    print(f"--- alert graph: {alert.title} → docs/alert-graph.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
