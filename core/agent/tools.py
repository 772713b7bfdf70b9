"""The assistant's read tools: typed arguments, a status object back, never an exception.

The model sees every tool's result as a `ToolResult` rendered to text — ok, error or no data —
so a failing tool is something it can report, not a crash of the turn. Output is capped (a
tenth of the context window by default) with a hint to narrow the query, and secrets are
redacted before the model sees anything. Who asks, and where, comes from the run's
`ToolContext`, never from the model's arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.actions.catalogue import CATALOGUE
from core.chat_proposals import ProposalRefused, propose
from core.db.models import Alert
from core.jobs import list_jobs
from core.policy.store import list_policies
from core.policy.testing import AlertUnderTest, describe_test
from core.proposals import list_proposals

Status = Literal["ok", "error", "no data"]

# Tokens, passwords and bearer headers, in the shapes they take in logs and configs.
_SECRETS = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|((?:password|passwd|pwd|token|secret|api[_-]?key)\s*[=:]\s*)\S+"
    r"|\bxox[abposr]-[A-Za-z0-9-]{8,}"
)


def redact(text: str) -> str:
    """Secrets replaced by [redacted], keeping the key so the line still reads."""

    def keep_key(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2) or ""
        return f"{key}[redacted]"

    return _SECRETS.sub(keep_key, text)


@dataclass(frozen=True)
class ToolResult:
    status: Status
    data: Any = None
    message: str = ""

    def render(self, limit: int) -> str:
        body: dict[str, Any] = {"status": self.status}
        if self.message:
            body["message"] = self.message
        if self.data is not None:
            body["data"] = self.data
        text = redact(json.dumps(body, default=str, ensure_ascii=False))
        if len(text) <= limit:
            return text
        return (
            text[: max(0, limit - 120)]
            + f'… [cut at {limit} characters: narrow your query (a filter, a smaller "limit")]'
        )


Progress = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ToolContext:
    """Who is asking and where: set by the surface for the run, never by the model.

    `progress`, when the surface has one, is told what the assistant is doing ("looking at
    pods in prod…") before each round of tool calls.
    """

    user: str
    conversation: str
    channel: str | None = None
    thread_ts: str | None = None
    progress: Progress | None = None


ToolFn = Callable[[Any, BaseModel, ToolContext], Awaitable[ToolResult]]


@dataclass(frozen=True)
class Tool:
    name: str  # the catalogue's name with dots as underscores (k8s.list_pods → k8s_list_pods)
    description: str  # one line: small models read every word of every schema, every turn
    args: type[BaseModel]
    run: ToolFn
    doing: str = ""  # what a person would see while it runs: "looking at pods"

    def schema(self) -> dict[str, Any]:
        """The tool as Ollama's /api/chat `tools` entry (OpenAI function format)."""
        parameters = self.args.model_json_schema()
        parameters.pop("title", None)
        parameters["properties"] = {
            name: _for_the_model(prop) for name, prop in parameters.get("properties", {}).items()
        }
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    async def call(self, runtime: Any, arguments: Any, context: ToolContext) -> ToolResult:
        if isinstance(arguments, str):  # small models send a JSON string now and then
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                return ToolResult("error", message="arguments are not a JSON object")
        try:
            args = self.args.model_validate(arguments or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "arguments"
            return ToolResult("error", message=f"bad arguments: {where}: {first['msg']}")
        try:
            return await self.run(runtime, args, context)
        except Exception as exc:  # a tool's failure is the model's information, not a crash
            return ToolResult("error", message=f"{type(exc).__name__}: {str(exc)[:300]}")


# What a small model reads every turn but cannot use: the arguments are validated against the
# full model when the tool is called (a bad one is an error the model sees), so regexes and
# length bounds only cost context. Kept: type, description, default, enum, numeric bounds.
_MODEL_HIDES = ("title", "pattern", "maxLength", "minLength")


def _for_the_model(prop: dict[str, Any]) -> dict[str, Any]:
    """One property's schema as the model sees it: `X or null` as X (optional is `required`'s
    business), without what only validation needs."""
    options = prop.get("anyOf")
    if options is not None:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            prop = {**{k: v for k, v in prop.items() if k != "anyOf"}, **kept[0]}
    return {k: v for k, v in prop.items() if k not in _MODEL_HIDES}


@dataclass
class Registry:
    tools: dict[str, Tool] = field(default_factory=dict)
    _schemas: tuple[tuple[str, ...], list[dict[str, Any]]] | None = None

    def add(self, tool: Tool) -> Tool:
        self.tools[tool.name] = tool
        return tool

    def doing(self, name: str, args: Any) -> str:
        """A tool call as a person would say it ("looking at pods in prod"), for progress."""
        tool = self.tools.get(name)
        what = tool.doing if tool is not None and tool.doing else f"calling {name}"
        where = args.get("namespace") if isinstance(args, dict) else None
        return f"{what} in {where}" if isinstance(where, str) and where else what

    def schemas(self) -> list[dict[str, Any]]:
        # Built once per set of tools: pydantic's JSON schema costs ~1 ms a tool.
        key = tuple(self.tools)
        if self._schemas is None or self._schemas[0] != key:
            self._schemas = (key, [tool.schema() for tool in self.tools.values()])
        return self._schemas[1]

    async def call(
        self, runtime: Any, name: str, arguments: Any, context: ToolContext
    ) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            offered = ", ".join(sorted(self.tools))
            return ToolResult("error", message=f"no tool named {name!r}; the tools are {offered}")
        return await tool.call(runtime, arguments, context)


TOOLS = Registry()


class _NoArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Recent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=10, ge=1, le=50, description="how many, newest first")


class _Proposals(_Recent):
    status: str | None = Field(
        default=None, description="pending, approved, succeeded, failed, denied, expired, …"
    )


class _PolicyTest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    labels: dict[str, str] = Field(description="the alert's labels, e.g. alertname, namespace")


async def _policies_list(runtime: Any, _args: BaseModel, _ctx: ToolContext) -> ToolResult:
    async with runtime.sessions() as session:
        found = await list_policies(session)
    if not found:
        return ToolResult("no data", message="no policies are applied")
    return ToolResult(
        "ok",
        [
            {
                "name": spec.name,
                "enabled": spec.enabled,
                "priority": spec.priority,
                "matchers": list(spec.matchers),
                "action": spec.action,
                "approval": spec.approval,
            }
            for _id, spec in found
        ],
    )


async def _alerts_recent(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, _Recent)
    query = sa.select(Alert).order_by(Alert.last_seen.desc(), Alert.id.desc()).limit(args.limit)
    async with runtime.sessions() as session:
        found = (await session.scalars(query)).all()
    if not found:
        return ToolResult("no data", message="no alerts received yet")
    return ToolResult(
        "ok",
        [
            {
                "alertname": row.alertname,
                "status": row.status,
                "labels": row.labels,
                "summary": (row.annotations or {}).get("summary", ""),
                "starts_at": row.starts_at,
                "last_seen": row.last_seen,
            }
            for row in found
        ],
    )


async def _proposals_recent(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, _Proposals)
    async with runtime.sessions() as session:
        found = await list_proposals(session, status=args.status, limit=args.limit)
    if not found:
        return ToolResult("no data", message="no proposals match")
    keep = ("id", "status", "status_reason", "action", "params", "target", "policy_name")
    return ToolResult("ok", [{k: v for k, v in p.as_dict().items() if k in keep} for p in found])


async def _jobs_recent(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, _Recent)
    async with runtime.sessions() as session:
        found = await list_jobs(session, limit=args.limit)
    if not found:
        return ToolResult("no data", message="no jobs have run")
    return ToolResult("ok", [job.as_dict() for job in found])


async def _policy_test(runtime: Any, args: BaseModel, _ctx: ToolContext) -> ToolResult:
    assert isinstance(args, _PolicyTest)
    loaded = await runtime.policies.get()
    report = describe_test(loaded.policy_set, AlertUnderTest(labels=dict(args.labels)))
    return ToolResult("ok", report.as_dict()["matches"] or "no policy matches: nothing proposed")


TOOLS.add(
    Tool(
        "policies_list",
        "List InfraAI's remediation policies.",
        _NoArgs,
        _policies_list,
        doing="reading the policies",
    )
)
TOOLS.add(
    Tool(
        "alerts_recent",
        "Recent alerts InfraAI received, newest first.",
        _Recent,
        _alerts_recent,
        doing="looking at recent alerts",
    )
)
TOOLS.add(
    Tool(
        "proposals_recent",
        "Recent remediation proposals and their status.",
        _Proposals,
        _proposals_recent,
        doing="looking at proposals",
    )
)
TOOLS.add(
    Tool(
        "jobs_recent",
        "Recent executed jobs and their results.",
        _Recent,
        _jobs_recent,
        doing="looking at jobs",
    )
)
TOOLS.add(
    Tool(
        "policy_test",
        "What InfraAI would do with an alert having these labels (records nothing).",
        _PolicyTest,
        _policy_test,
        doing="testing the policies",
    )
)


class _Propose(BaseModel):
    model_config = ConfigDict(extra="ignore")
    action: str = Field(
        description="one of: "
        + ", ".join(name for name, spec in sorted(CATALOGUE.items()) if spec.risk == "write")
    )
    params: dict[str, Any] = Field(description="the action's parameters, e.g. namespace, pod")
    reason: str = Field(default="", max_length=500, description="why, in one sentence")


async def _propose_action(runtime: Any, args: BaseModel, ctx: ToolContext) -> ToolResult:
    """A write becomes a proposal a person approves; the asker comes from the run's context."""
    assert isinstance(args, _Propose)
    settings = runtime.settings
    channel = ctx.channel or settings.infraai_channel
    try:
        async with runtime.sessions() as session, session.begin():
            made = await propose(
                session,
                action=args.action,
                params=args.params,
                requested_by=ctx.user,
                reason=args.reason,
                channel=channel,
                conversation=ctx.conversation,
                approvers=tuple(settings.infraai_approvers),
                ttl=timedelta(seconds=settings.proposal_ttl_seconds),
                dry_run=settings.infraai_dry_run,
            )
    except ProposalRefused as exc:
        return ToolResult("error", message=str(exc))
    if runtime.drain is not None:
        runtime.drain.wake()
    who = ", ".join(made.approvers) if made.approvers else "an approver"
    state = "already awaits" if made.existing else "awaits"
    return ToolResult(
        "ok",
        {"proposal": made.id, "action": made.action, "target": made.target},
        f"proposal #{made.id} {state} approval by {who}; nothing runs until then",
    )


TOOLS.add(
    Tool(
        "propose_action",
        "Propose a change (it runs only after a person approves it in Slack).",
        _Propose,
        _propose_action,
        doing="preparing a proposal",
    )
)
