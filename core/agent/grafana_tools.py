"""The assistant's Grafana tool: find dashboards (and their links) by title.

Named after the catalogue (`grafana.search_dashboards` → `grafana_search_dashboards`) with
the catalogue's own parameter limits. The adapter is synchronous: it runs on the adapter
threads. The model gets titles, folders and links, at most `LIMIT` of them; the registry's
output cap applies on top, as for every tool.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.agent.tools import TOOLS, Tool, ToolContext, ToolResult

LIMIT = 25


class _Search(BaseModel):
    model_config = ConfigDict(extra="ignore")
    query: str = Field(default="", max_length=200, description="words of the title; empty: all")


async def _search(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    """The adapter's search on the adapter threads; a fault is the model's information."""
    from core.ports import IntegrationError, NotConfigured

    assert isinstance(args, _Search)
    integrations = runtime.integrations
    try:
        grafana = await integrations.run(integrations.grafana)
        with integrations.faults():
            outcome = await integrations.run(grafana.search_dashboards, args.query.strip(), 100)
    except NotConfigured as exc:
        return ToolResult("error", message=str(exc))
    except IntegrationError as exc:
        return ToolResult("error", message=exc.message)
    found = list(outcome.data or [])
    if not found:
        return ToolResult("no data", message=outcome.summary)
    shown = [{k: d[k] for k in ("title", "folder", "url", "tags")} for d in found[:LIMIT]]
    message = outcome.summary
    if len(found) > LIMIT:
        message += f"; the first {LIMIT} shown: narrow the query"
    return ToolResult("ok", shown, message)


TOOLS.add(
    Tool(
        "grafana_search_dashboards",
        "Find Grafana dashboards by title; returns their links.",
        _Search,
        _search,
        doing="looking for dashboards",
    )
)
