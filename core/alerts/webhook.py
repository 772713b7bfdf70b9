"""Alertmanager's webhook payload (version 4), parsed strictly.

Strict because a malformed delivery must be refused whole with a reason (400) rather than
half-recorded; lenient only where Alertmanager itself is (a missing fingerprint from a
hand-written payload is computed from the labels, as Alertmanager computes it).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.text import storable

MAX_ALERTS_PER_PAYLOAD = 5000
_ZERO_TIME_YEAR = 1  # Alertmanager sends 0001-01-01T00:00:00Z for "no end yet"
# The latest instant kept: Python's datetime ends with year 9999, and a row PostgreSQL holds
# past that (9999-12-31T23:00-05:00 is in year 10000 in UTC) could not be read back.
LATEST = datetime(9999, 12, 31, tzinfo=UTC)
# What a body must contain for `storable` to have anything to replace: a NUL or surrogate
# escape, or a surrogate as raw bytes (ED A0–BF …), which is not UTF-8 but which Python's
# json decodes anyway ("surrogatepass"); a raw NUL is invalid JSON. A cheap scan in C, so
# the common body costs no walk over its strings.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")


class PayloadError(ValueError):
    """The payload is not a valid Alertmanager v4 webhook; the message says why."""


class MalformedBody(PayloadError):
    """The body is not JSON at all (or not JSON Python can hold)."""


def label_fingerprint(labels: dict[str, str]) -> str:
    canonical = "\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=8192)
    fingerprint: str = Field(default="", max_length=64)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """In UTC, within what every backend stores and Python reads back: an offset
        PostgreSQL cannot hold (+23:30) is gone, and year 9999 at -05:00 is clamped."""
        if value is None or value.year == _ZERO_TIME_YEAR:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        try:
            return min(value.astimezone(UTC), LATEST)
        except OverflowError:
            return LATEST

    @model_validator(mode="after")
    def _fill_fingerprint(self) -> WebhookAlert:
        if not self.fingerprint:
            self.fingerprint = label_fingerprint(self.labels)
        return self

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts")
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS_PER_PAYLOAD)


def decode_payload(body: bytes) -> WebhookPayload:
    """The webhook body (bytes) → a validated payload, normalised to what the database stores.

    PayloadError for anything malformed: bad JSON or UTF-8, numbers past Python's 4,300-digit
    limit, nesting past the recursion limit, or a body that is not a v4 webhook.
    """
    try:
        data = json.loads(body)
        if _UNSTORABLE_ESCAPE.search(body):
            data = storable(data)
    except RecursionError:
        raise MalformedBody("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        raise MalformedBody(f"malformed JSON: {str(exc)[:200]}") from None
    return parse_payload(data)


def parse_payload(data: Any) -> WebhookPayload:
    """Validate a decoded JSON body; raise PayloadError with the first problem, in one line."""
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object (Alertmanager webhook v4)")
    try:
        return WebhookPayload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = (".".join(str(p) for p in first["loc"]) or "body")[:200]
        if where == "version":
            got = data.get("version")
            raise PayloadError(
                f'version: expected "4" (Alertmanager webhook v4), got {got!r}'
            ) from None
        raise PayloadError(f"{where}: {first['msg']}") from None
