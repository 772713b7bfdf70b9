"""The assistant's discovery tools: `assets_list` (what earlier scans found) and `nmap_scan`.

A scan only reads the network, so the assistant may run one itself, but under exactly the
rules a person's `/infraai scan` has: one target, checked against `SCAN_ALLOWED_CIDRS` and
`SCAN_MAX_ADDRESSES` before nmap starts, one scan at a time per person (the asker, from the
run's context — never from the model), recorded in `assets` and `scans`. The parameter
models are the catalogue's (`nmap.scan`, `assets.list`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from core.actions.catalogue import FilterParams, ScanParams
from core.agent.tools import TOOLS, Tool, ToolContext, ToolResult
from core.discovery.scan import run_scan
from core.discovery.store import list_assets
from core.discovery.targets import ScanRefused
from core.ports import IntegrationError

ASSETS_SHOWN = 100


class _Progress:
    """A scan's start and steps as the assistant's progress line ("⏳ scanning …")."""

    def __init__(self, context: ToolContext) -> None:
        self.context = context

    async def start(self, text: str) -> None:
        if self.context.progress is not None:
            await self.context.progress(text.removeprefix("🔎 "))

    async def step(self, text: str) -> None:
        if self.context.progress is not None:
            await self.context.progress(f"scanning: {text.splitlines()[0]}")


async def _assets_list(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, FilterParams)
    async with runtime.sessions() as session:
        views = await list_assets(session, args.filter)
    if not views:
        return ToolResult("no data", message="no assets match; a scan finds them")
    shown = [v.as_dict() for v in views[:ASSETS_SHOWN]]
    more = len(views) - len(shown)
    return ToolResult(
        "ok", shown, f"{more} more not shown: narrow with a filter" if more > 0 else ""
    )


async def _nmap_scan(runtime: Any, args: BaseModel, ctx: ToolContext) -> ToolResult:
    assert isinstance(args, ScanParams)
    words = args.targets.replace(",", " ").split()
    if args.ports:
        words.append(args.ports)
    try:
        result = await run_scan(runtime, ctx.user, words, _Progress(ctx))
    except ScanRefused as exc:
        return ToolResult("error", message=str(exc))
    except IntegrationError as exc:
        return ToolResult("error", message=f"the scan failed: {exc.message}")
    return ToolResult("ok", result.as_dict(), result.summary())


TOOLS.add(
    Tool(
        "assets_list",
        "Hosts found by earlier scans: address, name, open ports; filter by CIDR, name, service.",
        FilterParams,
        _assets_list,
        doing="looking at the assets",
    )
)
TOOLS.add(
    Tool(
        "nmap_scan",
        "Scan one host or CIDR (allowed ranges only) for open TCP ports; records the assets.",
        ScanParams,
        _nmap_scan,
        doing="scanning",
    )
)
