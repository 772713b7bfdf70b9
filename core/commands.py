"""`/infraai …` and the console: one parser, one set of deterministic commands, no LLM.

Commands return data (`Reply` subclasses); each surface renders them (Block Kit in Slack,
plain text in the terminal). A command function's docstring is its help text: the first
line is the usage, the second the description.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from core.dashboards import DashboardNotFound, Found, look_up, split_panel
from core.jobs import JobRow, list_jobs
from core.policy.spec import PolicyError, PolicySpec
from core.policy.store import (
    PolicyNotFound,
    apply_policies,
    delete_policy,
    get_policy,
    list_policies,
    load_document,
    set_enabled,
)
from core.policy.testing import AlertUnderTest, TestReport, describe_test, labels_from_pairs
from core.ports import Health
from core.proposals import ProposalView, list_proposals
from core.runtime import Runtime
from core.switches import AUTO_PAUSED, get_switch, set_switch
from core.text import Person, words


@dataclass(frozen=True)
class Reply:
    """Base of every command result. `public`: show it to the channel, not only the caller."""

    public: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class Text(Reply):
    text: str  # may be `core.text.Words`, naming people


@dataclass(frozen=True)
class Error(Reply):
    text: str
    usage: str | None = None


@dataclass(frozen=True)
class Help(Reply):
    commands: list[tuple[str, str]]


@dataclass(frozen=True)
class Proposals(Reply):
    views: list[ProposalView]
    status: str | None = None


@dataclass(frozen=True)
class Jobs(Reply):
    rows: list[JobRow]


@dataclass(frozen=True)
class Policies(Reply):
    specs: list[PolicySpec]


@dataclass(frozen=True)
class PolicyYaml(Reply):
    spec: PolicySpec


@dataclass(frozen=True)
class PolicyTest(Reply):
    reports: list[TestReport]


@dataclass(frozen=True)
class Status(Reply):
    items: list[Health]
    paused: bool


@dataclass(frozen=True)
class Decided(Reply):
    ok: bool
    text: str


# ---- Grafana (issue 9)
@dataclass(frozen=True)
class Dashboards(Reply):
    """Dashboards found; one dashboard's panels; one panel's picture (see core.dashboards)."""

    found: Found


@dataclass(frozen=True)
class QueryResult(Reply):
    """`query`: the value(s) as a table and, when there is something to draw, a PNG graph.
    `rows` are (value, series) of the largest series; `notes` say what was cut and why."""

    expr: str
    window: str  # "1h": the graph's range
    kind: str  # vector, matrix, scalar, string
    rows: list[tuple[str, str]]
    total: int  # series in the result (rows show the first few)
    notes: list[str] = field(default_factory=list)
    png: bytes | None = None
    filename: str = "query.png"
    title: str = ""


@dataclass
class Invocation:
    """Who asked, from where, with what."""

    runtime: Runtime
    user: str
    args: list[str]
    raw: str
    # Platform hook for commands whose back-ends come later or live in the surface (ask).
    extras: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Invocation], Awaitable[Reply]]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return register


def usage_of(name: str) -> tuple[str, str]:
    doc = (COMMANDS[name].__doc__ or "").strip().splitlines()
    return (doc[0].strip() if doc else name, doc[1].strip() if len(doc) > 1 else "")


def split_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


async def run_command(runtime: Runtime, user: str, text: str, **extras: Any) -> Reply:
    """Parse and run one command line (without the leading `/infraai`)."""
    text = text.strip()
    if not text:
        return await cmd_help(Invocation(runtime, user, [], text, extras))
    # Any whitespace separates the command from its arguments: Slack keeps the newline a
    # person types after `/infraai policy apply` before pasting YAML.
    name, rest = [*text.split(None, 1), ""][:2]
    name = name.lower()
    handler = COMMANDS.get(name)
    if handler is None:
        return Error(f"Unknown command `{name}`.", usage=help_text())
    args = split_args(rest) if name not in ("ask", "policy", "query") else rest.split()
    return await handler(Invocation(runtime, user, args, rest.strip(), extras))


def help_text() -> str:
    return "\n".join(f"{usage} — {doc}" for usage, doc in (usage_of(n) for n in COMMANDS))


async def _is_admin(inv: Invocation) -> bool:
    approvers = inv.runtime.settings.infraai_approvers
    return await inv.runtime.approvals.authorizer.may_approve(inv.user, approvers)


# --- the commands, in the order help lists them ----------------------------------------------


@command("help")
async def cmd_help(inv: Invocation) -> Reply:
    """help
    What InfraAI can do, and how to ask."""
    return Help([usage_of(name) for name in COMMANDS])


@command("ask")
async def cmd_ask(inv: Invocation) -> Reply:
    """ask <question>
    Ask the assistant (answers in a thread; it may propose, never act)."""
    hook = inv.extras.get("ask")
    if not inv.raw:
        return Error("Ask what?", usage=usage_of("ask")[0])
    if hook is None:
        return Text("The assistant is not available yet: the deterministic commands all work.")
    result: Reply = await hook(inv)
    return result


# ---- discovery: scan and assets (core.discovery) -----------------------------------------


@dataclass(frozen=True)
class ScanReport(Reply):
    """A finished scan: `text` is its summary (counts and what changed)."""

    text: str
    scan_id: int


@dataclass(frozen=True)
class AssetList(Reply):
    """The topology view: (subnet, its hosts) in address order; `more` hosts not shown."""

    groups: list[tuple[str, list[Any]]]  # core.discovery.store.AssetView
    needle: str = ""
    more: int = 0


ASSETS_SHOWN = 200


@command("scan")
async def cmd_scan(inv: Invocation) -> Reply:
    """scan <host|cidr> [ports] [services]
    Scan for open TCP ports (allowed ranges only); progress and changes in a thread."""
    from core.discovery.scan import run_scan
    from core.discovery.targets import USAGE, ScanRefused
    from core.ports import IntegrationError

    try:
        result = await run_scan(
            inv.runtime, inv.user, inv.args, inv.extras.get("scan_progress"), **_resolver(inv)
        )
    except ScanRefused as exc:
        return Error(str(exc), usage=USAGE)
    except IntegrationError as exc:
        return Error(f"The scan failed: {exc.message}")
    return ScanReport(result.summary(), result.scan_id)


def _resolver(inv: Invocation) -> dict[str, Any]:
    resolve = inv.extras.get("resolve")  # tests: a resolver that answers what they need
    return {"resolve": resolve} if resolve is not None else {}


@command("assets")
async def cmd_assets(inv: Invocation) -> Reply:
    """assets [filter]
    Hosts discovered by earlier scans, by subnet (filter: CIDR, up/down, name, service)."""
    from core.discovery.store import by_subnet, list_assets

    needle = inv.raw.strip()
    async with inv.runtime.sessions() as session:
        views = await list_assets(session, needle)
    shown = views[:ASSETS_SHOWN]
    return AssetList(by_subnet(shown), needle, len(views) - len(shown))


@command("policy")
async def cmd_policy(inv: Invocation) -> Reply:
    """policy list|show NAME|apply YAML|enable NAME|disable NAME|delete NAME|test k=v …
    Manage remediation policies; changes need an approver."""
    verb = inv.args[0].lower() if inv.args else "list"
    rest = [*inv.raw.split(None, 1), ""][1] if inv.args else ""
    runtime = inv.runtime
    usage = usage_of("policy")[0]
    if verb == "list":
        async with runtime.sessions() as session:
            return Policies([spec for _id, spec in await list_policies(session)])
    if verb == "test":
        try:
            labels = labels_from_pairs(inv.args[1:])
        except ValueError as exc:
            return Error(str(exc), usage="policy test alertname=… namespace=… pod=…")
        if not labels:
            return Error("Give the alert's labels.", usage="policy test alertname=… pod=…")
        loaded = await runtime.policies.get()
        return PolicyTest([describe_test(loaded.policy_set, AlertUnderTest(labels))])
    if verb not in ("show", "apply", "enable", "disable", "delete"):
        return Error(f"Unknown policy verb `{verb}`.", usage=usage)
    if verb == "show":
        if len(inv.args) != 2:
            return Error("Which policy?", usage="policy show NAME")
        async with runtime.sessions() as session:
            try:
                return PolicyYaml(await get_policy(session, inv.args[1]))
            except PolicyNotFound:
                return Error(f"No policy named `{inv.args[1]}`.")
    if not await _is_admin(inv):
        return Error(f"Only approvers may {verb} policies.")
    actor = f"slack:{inv.user}" if inv.user.startswith(("U", "W")) else inv.user
    if verb == "apply":
        text = re.sub(r"^```(?:ya?ml)?\s*|\s*```$", "", rest.strip())
        try:
            specs = load_document(text)
        except PolicyError as exc:
            return Error(str(exc))
        async with runtime.sessions() as session, session.begin():
            result = await apply_policies(session, specs, actor)
        runtime.policies.invalidate()
        return Text(f"Policies applied: {result.summary()}.", public=True)
    if len(inv.args) != 2:
        return Error("Which policy?", usage=f"policy {verb} NAME")
    name = inv.args[1]
    message: str
    try:
        async with runtime.sessions() as session, session.begin():
            if verb == "delete":
                await delete_policy(session, name, actor)
                message = words(f"Policy `{name}` deleted by ", Person(inv.user), ".")
            else:
                changed = await set_enabled(session, name, verb == "enable", actor)
                state = "enabled" if verb == "enable" else "disabled"
                message = (
                    words(f"Policy `{name}` {state} by ", Person(inv.user), ".")
                    if changed
                    else f"Policy `{name}` was already {state}."
                )
    except PolicyNotFound:
        return Error(f"No policy named `{name}`.")
    runtime.policies.invalidate()
    return Text(message, public=True)


@command("proposals")
async def cmd_proposals(inv: Invocation) -> Reply:
    """proposals [status]
    Recent proposals, or only those in one status (pending, running, failed, …)."""
    from core.db.models import PROPOSAL_STATUSES

    status = inv.args[0].lower() if inv.args else None
    if status and status not in PROPOSAL_STATUSES:
        return Error(
            f"Unknown status `{status}`.", usage=f"proposals [{'|'.join(PROPOSAL_STATUSES)}]"
        )
    async with inv.runtime.sessions() as session:
        return Proposals(await list_proposals(session, status=status, limit=20), status)


@command("jobs")
async def cmd_jobs(inv: Invocation) -> Reply:
    """jobs [n]
    The last n job runs (default 10)."""
    try:
        limit = int(inv.args[0]) if inv.args else 10
    except ValueError:
        return Error(f"`{inv.args[0]}` is not a number.", usage="jobs [n]")
    if not 1 <= limit <= 100:
        return Error("Ask for between 1 and 100 jobs.", usage="jobs [n]")
    async with inv.runtime.sessions() as session:
        return Jobs(await list_jobs(session, limit=limit))


@command("query")
async def cmd_query(inv: Invocation) -> Reply:
    """query <promql> [range]
    Evaluate a PromQL query: the value and a graph (range e.g. 30m, 6h, 2d; default 1h)."""
    from core.query import run_query  # PromQL shaping and graphs: loaded on first use

    return await run_query(inv.runtime.integrations, inv.raw)


@command("dashboards")
async def cmd_dashboards(inv: Invocation) -> Reply:
    """dashboards [search] [panel ID|TITLE]
    Find Grafana dashboards; one match lists its panels; `panel` shows one as a picture."""
    from core.ports import IntegrationError, NotConfigured

    search, panel = split_panel(inv.args)
    if panel is not None and not (search and panel):
        return Error("Which dashboard, which panel?", usage="dashboards <search> panel <id|title>")
    try:
        found = await look_up(inv.runtime.integrations, search, panel)
    except NotConfigured as exc:
        return Error(str(exc))
    except IntegrationError as exc:
        return Error(exc.message)
    except DashboardNotFound as exc:
        return Error(str(exc))
    return Dashboards(found)


async def _set_pause(inv: Invocation, paused: bool) -> Reply:
    if not await _is_admin(inv):
        return Error(f"Only approvers may {'pause' if paused else 'resume'} auto-remediation.")
    async with inv.runtime.sessions() as session, session.begin():
        changed = await set_switch(session, AUTO_PAUSED, paused, inv.user)
    if paused:
        text = "⏸️ Auto-remediation paused" if changed else "Auto-remediation was already paused"
        text += ": auto policies now wait for a person's approval."
    else:
        text = "▶️ Auto-remediation resumed." if changed else "Auto-remediation was not paused."
    return Text(words(f"{text} (", Person(inv.user), ")"), public=changed)


@command("pause")
async def cmd_pause(inv: Invocation) -> Reply:
    """pause
    Stop auto policies from running by themselves (approvers only)."""
    return await _set_pause(inv, True)


@command("resume")
async def cmd_resume(inv: Invocation) -> Reply:
    """resume
    Let auto policies run again (approvers only)."""
    return await _set_pause(inv, False)


@command("status")
async def cmd_status(inv: Invocation) -> Reply:
    """status
    Health of each integration."""
    runtime = inv.runtime
    db_ok, db_detail = await runtime.database_ok()
    items = [Health("database", "ok" if db_ok else "failing", db_detail)]
    queue_ok, queue_detail = await runtime.queue_check()
    items.append(Health("queue", "ok" if queue_ok else "failing", queue_detail))
    # The monitor's last result: a dead integration cannot slow this command down.
    items.extend(await runtime.integration_health())
    for name, probe in inv.extras.get("probes", {}).items():
        ok, detail = await probe()
        items.append(Health(name, "ok" if ok else "failing", detail))
    paused = False
    if db_ok:
        async with runtime.sessions() as session:
            paused = await get_switch(session, AUTO_PAUSED)
    return Status(items, paused)
