"""The API's plumbing: one table of endpoints that serves requests and describes itself.

Each `Endpoint` names its path, scope and the pydantic models of its path, query, body and
response. The same models validate every request, shape every response and generate the
OpenAPI document (`openapi.py`), so the document cannot drift from what the handlers do.

The wrapper around each handler, in order: credentials (401), scope (403), the token's rate
(429 with Retry-After), the body's size (413), then validation (400 naming the field), so
nothing runs for a request that is refused. Every error has one shape,
`{"error": {"code", "message"}}`; a fault of ours is a 500 with a fixed message and the
trace in the log, never in the response; a database that is away is a 503.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.alerts.group_commit import is_connection_fault
from core.api_tokens import SCOPES, ApiToken, find_token
from core.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
# Per token (per owner): a steady rate and a burst. A script that pages through every
# proposal stays well inside it; a runaway loop gets 429s, not the database.
RATE_PER_SECOND = 20.0
BURST = 40
LOOPBACK_OWNER = "loopback"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: not_found, invalid, …")
    message: str = Field(description="one line for people")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Strict(BaseModel):
    """Request models: an unknown field is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Caller:
    owner: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        """As the audit trail names API callers."""
        return f"api:{self.owner}"


@dataclass
class Call:
    """One validated request, as a handler sees it."""

    runtime: Runtime
    caller: Caller
    request: web.Request
    path: Any = None
    query: Any = None
    body: Any = None


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # aiohttp syntax, relative to /api/v1: "/proposals/{id}"
    summary: str
    scope: str
    handler: Handler
    response: type[BaseModel] | None  # None: a stream or no body
    path_model: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    body_model: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    # The handler parses the body itself (policy apply: YAML or JSON, with the CLI's own
    # errors); `body_model` then only documents the JSON form. `body_media`: other types.
    raw_body: bool = False
    body_media: tuple[str, ...] = ()
    stream: str | None = None  # a streamed alternative's media type (text/event-stream)
    description: str = ""
    tags: tuple[str, ...] = ()


# ---- credentials, scopes, rates ------------------------------------------------------------


def _is_loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def authenticate(
    request: web.Request, tokens: tuple[ApiToken, ...], *, embedded: bool = False
) -> Caller:
    """The caller, or 401.

    No token configured: in the embedded default (SQLite, one person's machine) callers on
    loopback get every scope, as `/alerts` admits them. Anywhere else no token means no
    API: behind a port-forward, a sidecar or a proxy every caller is "loopback", and
    `policies:write` can create `auto` policies, which act with nobody's approval.
    """
    if not tokens:
        if embedded and _is_loopback(request):
            return Caller(LOOPBACK_OWNER, frozenset(SCOPES))
        raise ApiError(
            401,
            "unauthorized",
            "no API token is configured (INFRAAI_API_TOKENS; `infraai api-token` makes one)"
            + ("" if not embedded else ": only this machine may call the API"),
            **{"WWW-Authenticate": "Bearer"},
        )
    header = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    scheme, _, presented = header.partition(b" ")
    token = find_token(tokens, presented.strip()) if scheme.lower() == b"bearer" else None
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong bearer token",
            **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return Caller(token.owner, token.scopes)


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class RateLimiter:
    """A token bucket per owner, in this process (each replica limits what it serves)."""

    rate: float = RATE_PER_SECOND
    burst: int = BURST
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, owner: str) -> float:
        """0 when the request may go, else the seconds to wait."""
        now = time.monotonic()
        bucket = self._buckets.setdefault(owner, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


# ---- validation --------------------------------------------------------------------------


def describe(exc: ValidationError, where: str) -> str:
    """Pydantic's first errors as one line: `query.limit: Input should be …`."""
    parts = []
    for error in exc.errors()[:3]:
        loc = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}{'.' + loc if loc else ''}: {error['msg']}")
    return "; ".join(parts)


def refuse_unstorable(value: Any, where: str) -> None:
    """400 for text no database can keep: a NUL (PostgreSQL refuses it) or a lone surrogate
    (not UTF-8). Checked before validation, so nothing downstream ever sees one."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ApiError(400, "invalid", f"{at}: contains a NUL character")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "invalid", f"{at}: not valid Unicode") from None
        elif isinstance(item, dict):
            stack.extend((k, at) for k in item)
            stack.extend((v, f"{at}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{at}.{i}") for i, v in enumerate(item))


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid", describe(exc, where)) from None


def _query_data(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise ApiError(400, "invalid", f"query.{key}: given more than once")
        data[key] = values[0]
    refuse_unstorable(data, "query")
    return data


async def read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", "body over 1 MiB")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "too_large", "body over 1 MiB") from None
    except Exception as exc:  # truncated, bad encoding: never the text, it may quote input
        raise ApiError(400, "invalid", f"body could not be read: {type(exc).__name__}") from None


def decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid", "body: not UTF-8") from None
    except RecursionError:
        raise ApiError(400, "invalid", "body: nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "invalid", f"body: not valid JSON ({exc.args[0]})") from None


# ---- pagination ----------------------------------------------------------------------------


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id to continue below, or 400 for a cursor we did not make."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind == "id" and value.isdigit() and len(value) <= 10 and int(value) < 2**31:
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ApiError(400, "invalid", "query.cursor: not a cursor this API gave out")


# ---- the wrapper ---------------------------------------------------------------------------


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return web.json_response(body.model_dump(), status=status, headers=headers or None)


RUNTIME_KEY = web.AppKey("api_runtime", Runtime)
LIMITER_KEY = web.AppKey("api_limiter", RateLimiter)


def wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        runtime = request.app[RUNTIME_KEY]
        try:
            settings = runtime.settings
            caller = authenticate(request, settings.api_tokens, embedded=settings.is_sqlite)
            if endpoint.scope not in caller.scopes:
                raise ApiError(403, "forbidden", f"this token lacks the {endpoint.scope!r} scope")
            wait = request.app[LIMITER_KEY].take(caller.owner)
            if wait:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"more than {RATE_PER_SECOND:g} requests a second; retry later",
                    **{"Retry-After": str(max(1, math.ceil(wait)))},
                )
            call = Call(runtime, caller, request)
            if endpoint.path_model is not None:
                path = dict(request.match_info)
                refuse_unstorable(path, "path")
                call.path = _validate(endpoint.path_model, path, "path")
            if endpoint.query_model is not None:
                data = _query_data(request)
                call.query = _validate(endpoint.query_model, data, "query")
            elif request.query:
                raise ApiError(400, "invalid", f"query.{next(iter(request.query))}: not expected")
            if endpoint.body_model is not None:
                raw = await read_body(request)
                if endpoint.raw_body:
                    call.body = raw
                else:
                    document = decode_json(raw)
                    refuse_unstorable(document, "body")
                    call.body = _validate(endpoint.body_model, document, "body")
            result = await endpoint.handler(call)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, **exc.headers)
        except Exception as exc:
            if is_connection_fault(exc):
                log.warning(
                    "API %s %s: database unavailable: %s",
                    endpoint.method,
                    endpoint.path,
                    type(exc).__name__,
                )
                return error_response(503, "unavailable", "database unavailable, retry later")
            log.exception("API %s %s failed", endpoint.method, endpoint.path)
            return error_response(500, "internal", "internal error; it has been logged")
        if isinstance(result, web.StreamResponse):
            return result
        if endpoint.response is None:
            return web.Response(status=endpoint.status)
        shaped = (
            endpoint.response.model_validate(result)
            if not isinstance(result, endpoint.response)
            else result
        )
        return web.json_response(
            shaped.model_dump(mode="json", by_alias=True), status=endpoint.status
        )

    return handle


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own refusals under /api/v1 (no such path, wrong method) in the API's shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "invalid")
        message = {404: "no such endpoint", 405: f"method {request.method} not allowed"}.get(
            exc.status, exc.reason
        )
        return error_response(exc.status, code, message, **headers)
