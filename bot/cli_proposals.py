"""`infraai proposals`: what is pending, decided, running, done."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.cli_support import CliError, session_for, table

if TYPE_CHECKING:
    from core.config import Settings
    from core.proposals import ProposalView


def cmd_proposals(args: argparse.Namespace, settings: Settings) -> int:
    """List proposals, newest first (--status to filter, --json for machines)."""
    from core.db.models import PROPOSAL_STATUSES
    from core.proposals import list_proposals

    if args.status and args.status not in PROPOSAL_STATUSES:
        raise CliError(f"unknown status {args.status!r}; one of {', '.join(PROPOSAL_STATUSES)}")

    async def run() -> list[ProposalView]:
        async with session_for(settings) as session:
            return await list_proposals(session, status=args.status, limit=args.limit)

    proposals = asyncio.run(run())
    if args.json:
        print(json.dumps([p.as_dict() for p in proposals], indent=2))
        return 0
    rows: list[list[Any]] = [
        [
            p.id,
            p.status,
            p.action,
            p.target,
            p.policy_name or p.source,
            p.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            p.status_reason or "",
        ]
        for p in proposals
    ]
    print(table(["ID", "STATUS", "ACTION", "TARGET", "POLICY", "CREATED (UTC)", "NOTE"], rows))
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add: Callable[[str, Callable[[argparse.Namespace, Settings], int]], argparse.ArgumentParser],
) -> None:
    proposals = add("proposals", cmd_proposals)
    proposals.add_argument("--status", help="only proposals in this status")
    proposals.add_argument("--limit", type=int, default=50)
    proposals.add_argument("--json", action="store_true")
