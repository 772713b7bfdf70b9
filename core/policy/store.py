"""Policies in the database: apply / export / delete / enable, and the in-memory cache.

Applying a file is all-or-nothing: every policy is validated before anything is written, so
the policies already in force stay as they were when one of them is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.audit import record
from core.db.models import Policy
from core.db.types import utcnow
from core.policy.engine import PolicySet
from core.policy.spec import PolicyError, PolicySpec, parse_policy_document

_SPEC_FIELDS = [f for f in PolicySpec.model_fields if f != "name"]


class PolicyNotFound(LookupError):
    pass


def spec_from_row(row: Policy) -> PolicySpec:
    data = {f: getattr(row, f) for f in _SPEC_FIELDS}
    data["name"] = row.name
    data["matchers"] = tuple(row.matchers)
    data["approvers"] = tuple(row.approvers or ())
    return PolicySpec.model_validate(data)


def _row_values(spec: PolicySpec) -> dict[str, Any]:
    values = spec.model_dump(mode="json")
    values["matchers"] = list(spec.matchers)
    values["approvers"] = list(spec.approvers)
    return values


@dataclass
class ApplyResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.created)} created",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
        ]
        if self.deleted:
            parts.append(f"{len(self.deleted)} deleted")
        return ", ".join(parts)


# A policy file is a few hundred nodes; aliases may reuse some. Past this many nodes once
# every alias is expanded, it is an alias bomb ("billion laughs"), refused before any of it
# is built: a few lines of YAML can otherwise expand to gigabytes in whatever reads them.
MAX_EXPANDED_NODES = 100_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes `node` stands for with aliases expanded; linear in the distinct nodes."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(
            _expanded_size(key, sizes) + _expanded_size(value, sizes) for key, value in node.value
        )
    sizes[id(node)] = size
    return size


def _safe_yaml(text: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise PolicyError(
                "-", "yaml", f"aliases expand to more than {MAX_EXPANDED_NODES:,} nodes"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_document(text: str) -> list[PolicySpec]:
    """Parse policy YAML text; PolicyError for any problem, naming policy and field."""
    try:
        document = _safe_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PolicyError("-", "yaml", f"not valid YAML{where}") from None
    except RecursionError:
        raise PolicyError("-", "yaml", "nested too deeply") from None
    return parse_policy_document(document)


async def list_policies(session: AsyncSession) -> list[tuple[int, PolicySpec]]:
    rows = (await session.scalars(sa.select(Policy).order_by(Policy.priority, Policy.name))).all()
    return [(row.id, spec_from_row(row)) for row in rows]


async def get_policy(session: AsyncSession, name: str) -> PolicySpec:
    row = await session.scalar(sa.select(Policy).where(Policy.name == name))
    if row is None:
        raise PolicyNotFound(name)
    return spec_from_row(row)


async def apply_policies(
    session: AsyncSession, specs: Iterable[PolicySpec], actor: str, *, prune: bool = False
) -> ApplyResult:
    """Create or update the given policies (and with prune, delete the others)."""
    specs = list(specs)
    result = ApplyResult()
    existing = {row.name: row for row in (await session.scalars(sa.select(Policy))).all()}
    now = utcnow()
    for spec in specs:
        values = _row_values(spec)
        row = existing.get(spec.name)
        if row is None:
            session.add(Policy(**values, created_by=actor, created_at=now, updated_at=now))
            result.created.append(spec.name)
            record(session, actor, "policy.created", spec.name, policy=spec.to_yaml_dict())
        elif spec_from_row(row) != spec:
            before = spec_from_row(row).to_yaml_dict()
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            result.updated.append(spec.name)
            record(
                session,
                actor,
                "policy.updated",
                spec.name,
                before=before,
                after=spec.to_yaml_dict(),
            )
        else:
            result.unchanged.append(spec.name)
    if prune:
        keep = {spec.name for spec in specs}
        for name, row in existing.items():
            if name not in keep:
                await session.delete(row)
                result.deleted.append(name)
                record(session, actor, "policy.deleted", name)
    return result


async def delete_policy(session: AsyncSession, name: str, actor: str) -> None:
    row = await session.scalar(sa.select(Policy).where(Policy.name == name))
    if row is None:
        raise PolicyNotFound(name)
    record(session, actor, "policy.deleted", name, policy=spec_from_row(row).to_yaml_dict())
    await session.delete(row)


async def set_enabled(session: AsyncSession, name: str, enabled: bool, actor: str) -> bool:
    """Enable or disable a policy; returns whether anything changed."""
    row = await session.scalar(sa.select(Policy).where(Policy.name == name))
    if row is None:
        raise PolicyNotFound(name)
    if row.enabled == enabled:
        return False
    row.enabled, row.updated_at = enabled, utcnow()
    record(session, actor, "policy.enabled" if enabled else "policy.disabled", name)
    return True


def export_document(specs: Iterable[PolicySpec]) -> str:
    """The YAML that `apply` takes back unchanged."""
    document = {"policies": [spec.to_yaml_dict() for spec in specs]}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


@dataclass(frozen=True)
class LoadedPolicies:
    policy_set: PolicySet
    ids: dict[str, int]


def _load(rows: list[Policy]) -> LoadedPolicies:
    specs = [(row.id, spec_from_row(row)) for row in rows]
    return LoadedPolicies(PolicySet(s for _id, s in specs), {s.name: i for i, s in specs})


class PolicyCache:
    """The compiled policy set, reloaded when the table changes (another process may edit it).

    The check is one cheap aggregate query at most every `check_interval` seconds, so the
    webhook's hot path costs nothing extra while a CLI `policy apply` still takes effect
    within that interval without a restart.
    """

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], check_interval: float = 1.0
    ) -> None:
        self._sessions = sessions
        self._check_interval = check_interval
        self._loaded: LoadedPolicies | None = None
        self._signature: tuple[Any, ...] | None = None
        self._checked_at = 0.0

    def invalidate(self) -> None:
        self._checked_at = 0.0

    async def get(self) -> LoadedPolicies:
        now = time.monotonic()
        if self._loaded is not None and now - self._checked_at < self._check_interval:
            return self._loaded
        async with self._sessions() as session:
            signature = tuple(
                (
                    await session.execute(
                        sa.select(
                            sa.func.count(Policy.id),
                            sa.func.max(Policy.updated_at),
                            sa.func.max(Policy.id),
                        )
                    )
                ).one()
            )
            if self._loaded is None or signature != self._signature:
                rows = (
                    await session.scalars(sa.select(Policy).order_by(Policy.priority, Policy.name))
                ).all()
                # Validating and compiling 10,000 policies takes about a second: off the
                # event loop, so a policy change never stalls webhooks and Slack acks.
                self._loaded = await asyncio.to_thread(_load, list(rows))
                self._signature = signature
        self._checked_at = now
        return self._loaded
