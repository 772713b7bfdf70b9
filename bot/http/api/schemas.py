"""The API's request and response models: what the handlers validate and the document says.

Responses are read from core's views (`from_attributes`); requests forbid unknown fields.
Times are RFC 3339 in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from bot.http.api.framework import Strict
from core.db.models import PROPOSAL_STATUSES
from core.policy.spec import PolicySpec

ProposalStatus = Literal[
    "pending",
    "approved",
    "running",
    "succeeded",
    "failed",
    "denied",
    "expired",
    "superseded",
    "rate_limited",
]
assert set(ProposalStatus.__args__) == set(PROPOSAL_STATUSES)  # type: ignore[attr-defined]


# Ids are 32-bit integers in the schema (PostgreSQL `integer`).
MAX_ID = 2**31 - 1


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---- query models ------------------------------------------------------------------------


class PageQuery(Strict):
    limit: int = Field(default=50, ge=1, le=200, description="items per page")
    cursor: str | None = Field(
        default=None, max_length=64, description="`next_cursor` of the previous page"
    )
    since: AwareDatetime | None = Field(default=None, description="at or after (RFC 3339)")
    until: AwareDatetime | None = Field(default=None, description="before (RFC 3339)")

    @field_validator("since", "until")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """As the database compares them; 0001-01-01T00:00+01:00 is before year 1 in UTC."""
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("outside years 1 to 9999 once in UTC") from None


class ProposalQuery(PageQuery):
    status: ProposalStatus | None = None
    policy: str | None = Field(default=None, max_length=128, description="policy name")


class AlertQuery(PageQuery):
    status: Literal["firing", "resolved"] | None = None
    alertname: str | None = Field(default=None, max_length=255)


class JobQuery(PageQuery):
    status: str | None = Field(default=None, max_length=16)
    proposal: int | None = Field(default=None, ge=1, le=MAX_ID, description="proposal id")


class ScanQuery(PageQuery):
    status: Literal["running", "done", "failed"] | None = None


class AssetQuery(Strict):
    limit: int = Field(default=1000, ge=1, le=10_000, description="hosts at most, in address order")
    filter: str = Field(
        default="",
        max_length=200,
        description="an address or CIDR, up/down, or text in an address, hostname, vendor, "
        "port or service",
    )


class IdPath(Strict):
    id: int = Field(ge=1, le=MAX_ID)


class NamePath(Strict):
    name: str = Field(min_length=1, max_length=128)


class ApplyQuery(Strict):
    dry_run: bool = Field(default=False, description="validate and return the diff only")
    prune: bool = Field(default=False, description="delete the policies the document omits")


# ---- records ---------------------------------------------------------------------------------


class ProposalOut(Out):
    id: int
    source: str
    status: ProposalStatus
    status_reason: str | None
    policy_name: str | None
    action: str
    params: dict[str, Any]
    target: str
    risk: str
    approval: str
    dry_run: bool
    requested_by: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime | None
    alert_id: int | None


class AlertOut(Out):
    id: int
    fingerprint: str
    alertname: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str | None
    first_seen: datetime
    last_seen: datetime
    times_received: int


class JobOut(Out):
    id: int
    proposal_id: int
    action: str
    target: str
    attempt: int
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None = Field(description="seconds")
    worker_name: str | None
    output: str | None
    error: str | None
    rq_job_id: str | None


class AuditOut(Out):
    id: int
    at: datetime
    actor: str
    verb: str
    subject: str
    detail: dict[str, Any]


class TimelineOut(Out):
    """A proposal's incident timeline: the alert, the decision, every job attempt, the audit
    trail."""

    proposal: ProposalOut
    alert: AlertOut | None
    jobs: list[JobOut]
    audit: list[AuditOut]


class ProposalPage(Out):
    items: list[ProposalOut]
    next_cursor: str | None


class AlertPage(Out):
    items: list[AlertOut]
    next_cursor: str | None


class JobPage(Out):
    items: list[JobOut]
    next_cursor: str | None


# ---- policies ------------------------------------------------------------------------------


class PolicyOut(Out):
    """A policy as `infraai policy export` writes it (`continue` for continue_matching)."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    name: str
    description: str
    priority: int
    enabled: bool
    matchers: list[str]
    action: str
    params: dict[str, Any]
    approval: Literal["required", "auto"]
    approvers: list[str]
    channel: str | None
    cooldown_seconds: int
    max_runs_per_hour: int | None
    dry_run: bool
    continue_matching: bool = Field(alias="continue")
    allow_scale_to_zero: bool


class PolicyList(Out):
    items: list[PolicyOut]


class PolicyDocument(Strict):
    """What `infraai policy apply` reads, as JSON; YAML is accepted too
    (`Content-Type: application/yaml`)."""

    policies: list[PolicySpec] = Field(max_length=10_000)


class PolicyChange(Out):
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ApplyOut(Out):
    dry_run: bool
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]
    changes: dict[str, PolicyChange] = Field(
        description="per created, updated or deleted policy: before and after"
    )


class Deleted(Out):
    deleted: str


class AlertUnderTestIn(Strict):
    labels: dict[str, str] = Field(min_length=1, max_length=200)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=200)
    status: Literal["firing", "resolved"] = "firing"


class TestMatch(Out):
    policy: str
    action: str
    risk: str
    params: dict[str, Any] | None
    target: str | None
    approval: str
    dry_run: bool
    error: str | None


class TestAlertOut(Out):
    labels: dict[str, str]
    status: str


class TestOut(Out):
    alert: TestAlertOut
    matches: list[TestMatch]


# ---- assets ------------------------------------------------------------------------------


class AssetOut(Out):
    address: str
    hostname: str | None
    mac: str | None
    vendor: str | None
    up: bool
    open_ports: list[dict[str, Any]] = Field(
        description="port, protocol, service (and product/version when detected)"
    )
    first_seen: datetime
    last_seen: datetime


class SubnetOut(Out):
    subnet: str = Field(description="the /24 (IPv4) or /64 (IPv6)")
    hosts: list[AssetOut]


class TopologyOut(Out):
    """The discovered hosts grouped by subnet, in address order."""

    subnets: list[SubnetOut]
    total: int = Field(description="hosts matching; more than shown when over `limit`")


class ScanOut(Out):
    id: int
    target: str
    ports: str | None
    requested_by: str
    status: Literal["running", "done", "failed"]
    addresses: int
    hosts_up: int
    changes: dict[str, Any] = Field(description="new hosts, ports opened and closed, hosts down")
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class ScanPage(Out):
    items: list[ScanOut]
    next_cursor: str | None


# ---- chat ------------------------------------------------------------------------------------


class ChatIn(Strict):
    message: str = Field(min_length=1, max_length=8000)
    conversation: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="continue this conversation; omitted: a new one (returned)",
    )
    stream: bool = Field(default=False, description="answer as server-sent events")


class ToolCallOut(Out):
    name: str
    args: dict[str, Any]


class ChatOut(Out):
    conversation: str
    answer: str
    ok: bool = Field(description="false when the model could not answer (the text says why)")
    tool_calls: list[ToolCallOut]
