"""Plain-text rendering of command replies and proposal cards (the console surface)."""

from __future__ import annotations

import json
import re
from datetime import datetime

from bot.cli_support import table
from bot.emoji import HEALTH_EMOJI, STATUS_EMOJI
from core import commands as c
from core.cards import ProposalCard
from core.dashboards import Found
from core.policy.store import export_document

STATUS_ICONS = STATUS_EMOJI  # one vocabulary of states for every surface


CONSOLE_WIDTH = 80


# Core marks names and requests as code (`x`) for the chat surfaces; a terminal shows the
# name itself. Only whole spans go: a lone backtick inside outside text stays.
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def plain(text: str) -> str:
    """Text as the terminal shows it: code spans without their backticks."""
    return _CODE_SPAN.sub(r"\1", text)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def render_card(card: ProposalCard) -> str:
    icon = STATUS_ICONS.get(card.status, "•")
    head = f"{icon} #{card.id} {card.status.upper()}"
    if card.alert is not None:
        head += f" · {card.alert.alertname}"
        if card.alert.severity:
            head += f" ({card.alert.severity})"
    lines = [head]
    if card.alert is not None and card.alert.summary:
        lines.append(f"   {card.alert.summary}")
    params = json.dumps(card.params, sort_keys=True)
    lines.append(f"   proposes: {card.action} {params} → {card.target}  [{card.risk}]")
    if card.dry_run:
        lines.append("   dry run: nothing will be changed")
    if card.status_reason:
        lines.append(f"   note: {card.status_reason}")
    if card.decided_by:
        lines.append(f"   decided by {card.decided_by} at {_when(card.decided_at)}")
    if card.status == "pending":
        lines.append(
            f"   expires {_when(card.expires_at)} — type approve {card.id} or deny {card.id}"
        )
    if card.last_result:
        lines.append(f"   result: {card.last_result}")
    return plain("\n".join(lines))


def render_status_line(card: ProposalCard) -> str:
    """One line for a change of state (the full card was printed when it was proposed)."""
    line = f"{STATUS_ICONS.get(card.status, '•')} #{card.id} {card.status}"
    if card.status in ("approved", "denied") and card.decided_by:
        line += f" by {card.decided_by}"
    if card.status_reason and card.status not in ("approved", "denied"):
        line += f": {card.status_reason}"
    return plain(line)


def render_reply(reply: c.Reply) -> str:
    if isinstance(reply, c.PolicyYaml):  # data `policy apply` takes back: byte for byte
        return _render_reply(reply)
    return plain(_render_reply(reply))


def _render_reply(reply: c.Reply) -> str:
    if isinstance(reply, c.Text | c.Decided):
        return str(reply.text)  # people by their id
    if isinstance(reply, c.Error):
        return reply.text + (f"\nusage: {reply.usage}" if reply.usage else "")
    if isinstance(reply, c.Help):
        width = max(len(usage) for usage, _ in reply.commands)
        return "\n".join(f"{usage.ljust(width)}  {doc}" for usage, doc in reply.commands)
    if isinstance(reply, c.Proposals):
        return table(
            ["ID", "STATUS", "ACTION", "TARGET", "POLICY", "NOTE"],
            [
                [
                    p.id,
                    p.status,
                    p.action,
                    p.target,
                    p.policy_name or p.source,
                    p.status_reason or "",
                ]
                for p in reply.views
            ],
            width=CONSOLE_WIDTH,
        )
    if isinstance(reply, c.Jobs):
        return table(
            ["PROPOSAL", "TRY", "STATUS", "ACTION", "TARGET", "RESULT"],
            [
                [
                    j.proposal_id,
                    j.attempt,
                    j.status,
                    j.action,
                    j.target,
                    " ".join((j.error or j.output or "").split()),
                ]
                for j in reply.rows
            ],
            width=CONSOLE_WIDTH,
        )
    if isinstance(reply, c.Policies):
        return table(
            ["NAME", "PRIO", "ENABLED", "ACTION", "APPROVAL"],
            [
                [s.name, s.priority, "yes" if s.enabled else "no", s.action, s.approval]
                for s in reply.specs
            ],
        )
    if isinstance(reply, c.PolicyYaml):
        return export_document([reply.spec]).rstrip()
    if isinstance(reply, c.PolicyTest):
        return "\n\n".join(r.as_text() for r in reply.reports)
    if isinstance(reply, c.QueryResult):
        return render_query(reply)
    if isinstance(reply, c.Status):
        lines = [f"{HEALTH_EMOJI[h.state]} {h.name}: {h.state} — {h.detail}" for h in reply.items]
        lines.append("⏸️ auto-remediation paused" if reply.paused else "▶️ auto-remediation on")
        return "\n".join(lines)
    # ---- Grafana (issue 9)
    if isinstance(reply, c.Dashboards):
        return render_dashboards(reply.found)
    if isinstance(reply, c.ScanReport):  # discovery
        return reply.text
    if isinstance(reply, c.AssetList):
        return render_assets(reply)
    return repr(reply)


# ---- Grafana (issue 9) ---------------------------------------------------------------------


def render_dashboards(found: Found) -> str:
    """Links to dashboards, to one dashboard's panels, or to one panel (the console saves a
    panel's picture itself and says where)."""
    if found.panel is not None and found.board is not None:
        text = f"📊 Panel {found.panel.id} {found.panel.title} of {found.board.title}\n"
        text += f"   {found.panel.url}"
        return text + (f"\n   No picture: {found.note}." if found.note else "")
    if found.board is not None:
        b = found.board
        lines = [f"{b.title} ({b.folder})", f"   {b.url}"]
        if not found.panels:
            lines.append("It has no panels.")
        else:
            lines.append(f"Panels (a picture of one: dashboards {found.search} panel ID):")
        width = max((len(str(p.id)) for p in found.panels), default=1)
        for p in found.panels:
            lines += [f"  {str(p.id).rjust(width)}  {p.title}", f"  {' ' * width}  {p.url}"]
        return "\n".join(lines)
    if not found.dashboards:
        return (
            f"No Grafana dashboard matches {found.search!r}."
            if found.search
            else ("Grafana has no dashboards.")
        )
    head = (
        f"Grafana dashboards matching {found.search!r}:" if found.search else "Grafana dashboards:"
    )
    lines = [head]
    for d in found.dashboards:
        lines += [f"  {d.title} ({d.folder})", f"    {d.url}"]
    if found.more:
        lines.append(f"  … and {found.more} more: narrow the search.")
    return "\n".join(lines)


def render_query(reply: c.QueryResult, graph_path: str | None = None) -> str:
    """`query`: the values (largest series first), what was cut, and where the graph is."""
    lines = [f"query: {reply.expr}"]
    if reply.rows:
        lines.append(table(["VALUE", "SERIES"], reply.rows, width=CONSOLE_WIDTH))
    else:
        lines.append("(no data: the expression matches no series now)")
    if reply.total > len(reply.rows):
        lines.append(f"… {reply.total - len(reply.rows)} more series")
    lines.extend(f"note: {note}" for note in reply.notes)
    if graph_path:
        lines.append(f"graph (last {reply.window}): {graph_path}")
    return "\n".join(lines)


def render_assets(reply: c.AssetList) -> str:
    """The topology view: a table per subnet (address, state, name, services)."""
    if not reply.groups:
        if reply.needle:
            return f"No assets match `{reply.needle}`."
        return "No assets yet: `scan <host|cidr>` finds them."
    parts = []
    for subnet, views in reply.groups:
        rows = [
            [v.address, "up" if v.up else "down", v.hostname or "", v.services() or "-"]
            for v in views
        ]
        parts.append(
            f"{subnet}\n"
            + table(["ADDRESS", "STATE", "HOSTNAME", "SERVICES"], rows, width=CONSOLE_WIDTH)
        )
    if reply.more:
        parts.append(f"…and {reply.more} more: narrow with a filter (a CIDR, a name, a service).")
    return "\n\n".join(parts)
