"""The policy engine: which policies match an alert, and what each would propose.

Pure: data in, decisions out, no I/O — the webhook, `infraai policy test` and the
benchmarks all call the same `PolicySet.evaluate`. Policies are evaluated in priority order
(lower first, then by name); the first match wins unless it says `continue: true`, as
Alertmanager routes do. An index over equality matchers picks the candidates, so an alert
costs about the same against ten thousand policies as against ten.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from core.actions.catalogue import CATALOGUE, ActionSpec, Params, describe_errors
from core.policy.matchers import Matcher, parse_matcher
from core.policy.spec import PolicySpec
from core.policy.templating import (
    CompiledParam,
    TemplateError,
    alert_context,
    compile_param,
    render_param,
)

# Labels worth indexing on, best first: alertname splits the policy space most evenly.
_PREFERRED_INDEX_LABELS = ("alertname",)


@dataclass(frozen=True)
class CompiledPolicy:
    spec: PolicySpec
    order: int
    matchers: tuple[Matcher, ...]
    params: Mapping[str, CompiledParam]
    action: ActionSpec
    # What the rendered params depend on, when every param is a literal or a plain
    # `{{ labels.x }}` / `{{ annotations.x }}`: the decision is then a function of these
    # values and can be remembered. None: a real template, rendered every time.
    lookups: tuple[tuple[str, str], ...] | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        for matcher in self.matchers:  # noqa: SIM110 - no generator on the hot path
            if not matcher.matches(labels):  # type: ignore[arg-type]
                return False
        return True


@dataclass(frozen=True)
class Decision:
    """One matching policy and what it would propose for this alert (or why it cannot)."""

    policy: PolicySpec
    action: ActionSpec
    params: Params | None
    error: str | None

    @property
    def target(self) -> str:
        return self.action.target(self.params) if self.params is not None else ""

    @property
    def dedup_key(self) -> str:
        return dedup_key(self.policy.name, self.action.name, self.params_dict)

    @property
    def params_dict(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json") if self.params is not None else {}


def dedup_key(policy: str, action: str, params: Mapping[str, Any]) -> str:
    """Same policy, same action, same rendered params → the same remediation."""
    canonical = json.dumps([policy, action, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def compile_policy(spec: PolicySpec, order: int) -> CompiledPolicy:
    params = {k: compile_param(v) for k, v in spec.params.items()}
    lookups: tuple[tuple[str, str], ...] | None = tuple(
        p.lookup for p in params.values() if p.lookup is not None
    )
    if any(p.template is not None and p.lookup is None for p in params.values()):
        lookups = None
    return CompiledPolicy(
        spec=spec,
        order=order,
        matchers=tuple(parse_matcher(m) for m in spec.matchers),
        params=params,
        action=CATALOGUE[spec.action],
        lookups=lookups,
    )


# Decisions remembered per policy set (Alertmanager re-sends the same label sets every
# group_interval, and many alerts share the values a policy's params read); FIFO-evicted.
DECISION_MEMO_SIZE = 16_384


AFFIX_KEY = 3  # characters of a literal prefix/suffix used as its bucket key


def _index_choice(policy: CompiledPolicy) -> tuple[str, str, tuple[str, ...]] | None:
    """How to find this policy: ("eq", label, values), ("prefix"|"suffix", label, (key,)).

    Equality on alertname first (it splits the policy space most evenly), then any
    equality, then a literal prefix or suffix of at least AFFIX_KEY characters.
    """
    indexable = {m.name: v for m in policy.matchers if (v := m.equality_values()) is not None}
    for name in _PREFERRED_INDEX_LABELS:
        if name in indexable:
            return "eq", name, indexable[name]
    if indexable:
        name = sorted(indexable)[0]
        return "eq", name, indexable[name]
    for matcher in policy.matchers:
        affix = matcher.literal_affix()
        if affix is not None and len(affix[1]) >= AFFIX_KEY:
            kind, literal = affix
            key = literal[:AFFIX_KEY] if kind == "prefix" else literal[-AFFIX_KEY:]
            return kind, matcher.name, (key,)
    return None


class PolicySet:
    """An immutable, compiled, indexed set of enabled policies."""

    def __init__(self, specs: Iterable[PolicySpec]) -> None:
        ordered = sorted((s for s in specs if s.enabled), key=lambda s: (s.priority, s.name))
        self.policies: tuple[CompiledPolicy, ...] = tuple(
            compile_policy(spec, i) for i, spec in enumerate(ordered)
        )
        # kind ("eq", "prefix", "suffix") → label → key → policy orders (ascending)
        self._index: dict[str, dict[str, dict[str, list[int]]]] = {
            "eq": {},
            "prefix": {},
            "suffix": {},
        }
        self._unindexed: list[int] = []
        self._decisions: dict[tuple[Any, ...], Decision] = {}
        for policy in self.policies:
            choice = _index_choice(policy)
            if choice is None:
                self._unindexed.append(policy.order)
                continue
            kind, label, keys = choice
            by_key = self._index[kind].setdefault(label, {})
            for key in keys:
                by_key.setdefault(key, []).append(policy.order)

    def __len__(self) -> int:
        return len(self.policies)

    def candidates(self, labels: Mapping[str, str]) -> list[int]:
        """Orders of the policies that could match, ascending; a superset of the matches."""
        lists = [self._unindexed] if self._unindexed else []
        for label, by_value in self._index["eq"].items():
            found = by_value.get(labels.get(label, ""))
            if found:
                lists.append(found)
        for label, by_key in self._index["prefix"].items():
            found = by_key.get(labels.get(label, "")[:AFFIX_KEY])
            if found:
                lists.append(found)
        for label, by_key in self._index["suffix"].items():
            found = by_key.get(labels.get(label, "")[-AFFIX_KEY:])
            if found:
                lists.append(found)
        if len(lists) == 1:
            return lists[0]
        # A policy sits in exactly one list, and an alert has one value per label, so the
        # lists are disjoint: no de-duplication needed.
        return sorted(order for group in lists for order in group)

    def matching(self, labels: Mapping[str, str]) -> list[CompiledPolicy]:
        """The policies that apply, honouring first-match-wins and `continue`."""
        matched = []
        policies = self.policies
        for order in self.candidates(labels):
            policy = policies[order]
            if policy.matches(labels):
                matched.append(policy)
                if not policy.spec.continue_matching:
                    break
        return matched

    def evaluate(
        self,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> list[Decision]:
        matched = self.matching(labels)
        if not matched:
            return []
        decisions: list[Decision] = []
        context: dict[str, Any] | None = None
        for policy in matched:
            key: tuple[Any, ...] | None = None
            if policy.lookups is not None:
                sources = {"labels": labels, "annotations": annotations or {}}
                key = (policy.order, *(sources[s].get(k) for s, k in policy.lookups))
                found = self._decisions.get(key)
                if found is not None:
                    decisions.append(found)
                    continue
            if context is None:
                context = alert_context(dict(labels), dict(annotations or {}), **extra)
            decision = render_decision(policy, context)
            if key is not None:
                if len(self._decisions) >= DECISION_MEMO_SIZE:
                    del self._decisions[next(iter(self._decisions))]
                self._decisions[key] = decision
            decisions.append(decision)
        return decisions


def render_decision(policy: CompiledPolicy, context: dict[str, Any]) -> Decision:
    spec, action = policy.spec, policy.action
    raw: dict[str, Any] = {}
    for key, param in policy.params.items():
        try:
            raw[key] = render_param(param, context)
        except TemplateError as exc:
            return Decision(spec, action, None, f"params.{key}: {exc}")
    try:
        params = action.validate(raw)
    except ValidationError as exc:
        return Decision(spec, action, None, describe_errors(exc))
    if getattr(params, "replicas", None) == 0 and not spec.allow_scale_to_zero:
        return Decision(spec, action, None, "replicas: scaling to 0 is not allowed by this policy")
    return Decision(spec, action, params, None)


def naive_matching(specs: Iterable[PolicySpec], labels: Mapping[str, str]) -> list[PolicySpec]:
    """The reference: a linear scan over every policy, reparsing nothing but indexing nothing.

    Kept for the benchmark and for property tests that the index changes no answer.
    """
    compiled = PolicySet(specs).policies
    matched = []
    for policy in compiled:
        if policy.matches(labels):
            matched.append(policy.spec)
            if not policy.spec.continue_matching:
                break
    return matched
