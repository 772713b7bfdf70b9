"""The assistant's Kubernetes read tools: pods, a pod's log, events.

Named after the catalogue (`k8s.list_pods` → `k8s_list_pods`), with the catalogue's own
parameter models, so a name the model invents is refused before any request. The adapter is
synchronous (the official client): its calls run on the adapter threads, never on the event
loop. The
log is filtered (grep) and tailed here, before the model sees it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.actions.catalogue import Namespace, ObjectName, Selector
from core.agent.tools import TOOLS, Tool, ToolContext, ToolResult


class _Pods(BaseModel):
    model_config = ConfigDict(extra="ignore")
    namespace: Namespace
    selector: Selector | None = Field(default=None, description="labels, e.g. app=api")


class _Logs(BaseModel):
    model_config = ConfigDict(extra="ignore")
    namespace: Namespace
    pod: ObjectName
    tail: int = Field(default=100, ge=1, le=1000, description="last N lines")
    grep: str | None = Field(default=None, max_length=100, description="keep matching lines")


class _Events(BaseModel):
    model_config = ConfigDict(extra="ignore")
    namespace: Namespace
    limit: int = Field(default=20, ge=1, le=100)


async def _kubernetes(runtime: Any, call: str, *args: Any) -> Any:
    """The adapter's read on the adapter threads; a fault is the model's information."""
    from core.ports import IntegrationError, NotConfigured

    integrations = runtime.integrations
    try:
        adapter = await integrations.run(integrations.kubernetes)
        with integrations.faults():
            return await integrations.run(getattr(adapter, call), *args)
    except NotConfigured as exc:
        return ToolResult("error", message=str(exc))
    except IntegrationError as exc:
        return ToolResult("error", message=exc.message)


async def _list_pods(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, _Pods)
    outcome = await _kubernetes(runtime, "list_pods", args.namespace, args.selector)
    if isinstance(outcome, ToolResult):
        return outcome
    if not outcome.data:
        return ToolResult("no data", message=outcome.summary)
    return ToolResult("ok", outcome.data, outcome.summary)


async def _pod_logs(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, _Logs)
    outcome = await _kubernetes(runtime, "pod_logs", args.namespace, args.pod, args.tail)
    if isinstance(outcome, ToolResult):
        return outcome
    lines = str(outcome.data or "").splitlines()
    if args.grep:
        needle = args.grep.lower()  # a plain substring: no regex from the model
        lines = [line for line in lines if needle in line.lower()]
    if not lines:
        return ToolResult("no data", message=f"{outcome.summary}: no matching lines")
    return ToolResult("ok", "\n".join(lines[-args.tail :]), outcome.summary)


async def _events(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, _Events)
    outcome = await _kubernetes(runtime, "events", args.namespace, args.limit)
    if isinstance(outcome, ToolResult):
        return outcome
    if not outcome.data:
        return ToolResult("no data", message=f"no events in {args.namespace}")
    return ToolResult("ok", outcome.data, outcome.summary)


TOOLS.add(
    Tool(
        "k8s_list_pods",
        "Pods of a namespace: phase, readiness, restarts.",
        _Pods,
        _list_pods,
        doing="looking at pods",
    )
)
TOOLS.add(
    Tool(
        "k8s_pod_logs",
        "The last lines of a pod's log, optionally filtered.",
        _Logs,
        _pod_logs,
        doing="reading a pod's log",
    )
)
TOOLS.add(
    Tool(
        "k8s_events",
        "Recent events of a namespace, newest first.",
        _Events,
        _events,
        doing="looking at events",
    )
)
