"""The policy model: the YAML shape of docs/policies.md and the checks made on write.

A policy that fails any check is refused as a whole with a message naming the policy and
the field, so a typo in one file never half-applies and never leaves a policy in force that
would render garbage into an action at 3 a.m.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from core.actions.catalogue import CATALOGUE, describe_errors
from core.policy.matchers import MatcherError, parse_matcher
from core.policy.templating import TemplateError, alert_context, compile_param, render_param

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_INT: TypeAdapter[int] = TypeAdapter(int)


class PolicyError(ValueError):
    """A policy refused on write; the message names the policy and the field."""

    def __init__(self, policy: str, field: str, reason: str) -> None:
        super().__init__(f"policy {policy!r}: {field}: {reason}")
        self.policy, self.field, self.reason = policy, field, reason


class PolicySpec(BaseModel):
    """One policy as written in YAML (and stored in the `policies` table)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str
    description: str = ""
    priority: int = Field(default=100, ge=0, le=1_000_000)
    enabled: bool = True
    matchers: tuple[str, ...] = Field(min_length=1)
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    approval: Literal["required", "auto"] = "required"
    approvers: tuple[str, ...] = ()
    channel: str | None = None
    cooldown_seconds: int = Field(default=0, ge=0, le=30 * 86400)
    max_runs_per_hour: int | None = Field(default=None, ge=1, le=10_000)
    dry_run: bool = False
    continue_matching: bool = Field(default=False, alias="continue")
    allow_scale_to_zero: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("lowercase letters, digits, '.', '_' and '-', at most 128")
        return value

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for source in value:
            try:
                parse_matcher(source)
            except MatcherError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("action")
    @classmethod
    def _action(cls, value: str) -> str:
        if value not in CATALOGUE:
            raise ValueError(f"unknown action {value!r}; known: {', '.join(sorted(CATALOGUE))}")
        return value

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for approver in value:
            if not _SLACK_ID.match(approver):
                raise ValueError(f"{approver!r} is not a Slack user (U…) or user-group (S…) ID")
        return value

    @model_validator(mode="after")
    def _params_fit_the_action(self) -> PolicySpec:
        check_params(self)
        return self

    def to_yaml_dict(self) -> dict[str, Any]:
        """The YAML shape, with defaults left out so exports stay short and diffable."""
        data = self.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        data["name"], data["matchers"], data["action"] = self.name, list(self.matchers), self.action
        order = list(PolicySpec.model_fields)
        aliases = {"continue_matching": "continue"}
        keys = [aliases.get(k, k) for k in order]
        return {k: data[k] for k in keys if k in data}


def check_params(spec: PolicySpec) -> None:
    """Validate params against the action's schema without an alert at hand.

    Literal values are checked fully; a templated value is checked for syntax, and — when it
    reads no alert data — rendered and checked like a literal. Errors on fields whose value
    depends on the alert are left to evaluation time, where they are recorded per alert.
    """
    action = CATALOGUE[spec.action]
    raw: dict[str, Any] = {}
    alert_dependent: set[str] = set()
    for key, value in spec.params.items():
        try:
            compiled = compile_param(value)
        except TemplateError as exc:
            raise ValueError(f"params.{key}: {exc}") from None
        if compiled.template is not None and compiled.variables:
            alert_dependent.add(key)
            raw[key] = value
        else:
            try:
                raw[key] = render_param(compiled, alert_context({}, {}))
            except TemplateError as exc:
                raise ValueError(f"params.{key}: {exc}") from None
    scales_to_zero = "replicas" in raw and _is_zero(raw["replicas"])
    if spec.action == "k8s.scale" and scales_to_zero and not spec.allow_scale_to_zero:
        raise ValueError("params.replicas: scaling to 0 needs allow_scale_to_zero: true")
    try:
        action.validate(raw)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not (e["loc"] and e["loc"][0] in alert_dependent)]
        if errors:
            first = errors[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"params.{where}: {first['msg']}" if where else first["msg"]) from None


def _is_zero(value: Any) -> bool:
    """Zero as the schema's int field would read it ("00", 0.0 and false included)."""
    try:
        return _INT.validate_python(value) == 0
    except ValidationError:
        return False


def parse_policy(data: Any, where: str = "policy") -> PolicySpec:
    """Build a PolicySpec from YAML data, raising PolicyError naming policy and field."""
    # The name as written, if it is one: anything else (a list, a mapping, an alias bomb)
    # is never formatted into the error.
    given = data.get("name") if isinstance(data, dict) else None
    name = given if isinstance(given, str) and len(given) <= 128 else where
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "policy"
        message = first["msg"].removeprefix("Value error, ")
        if field == "policy" or not first["loc"]:
            # Errors raised by the model validator carry their own "params.x:" prefix.
            field, _, message = message.partition(": ") if ": " in message else ("", "", message)
        raise PolicyError(str(name), field or "policy", message) from None


def parse_policy_document(document: Any) -> list[PolicySpec]:
    """Parse the `policies:` YAML document; every policy must pass or none is returned."""
    if not isinstance(document, dict) or not isinstance(document.get("policies"), list):
        raise PolicyError("-", "policies", "the file must hold a top-level `policies:` list")
    specs = [parse_policy(item, f"#{i + 1}") for i, item in enumerate(document["policies"])]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise PolicyError(spec.name, "name", "appears twice in this file")
        seen.add(spec.name)
    return specs


__all__ = ["PolicyError", "PolicySpec", "describe_errors", "parse_policy", "parse_policy_document"]
