"""The OpenAPI 3.1 document, generated from the endpoint table and its pydantic models.

OpenAPI 3.1 schemas are JSON Schema 2020-12, which is what pydantic writes, so each model's
schema goes in as it is; only query and path parameters are unpacked field by field, and a
parameter's "or null" is dropped (a query string cannot say null: it omits the parameter).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from bot.http.api.framework import BURST, RATE_PER_SECOND, Endpoint, ErrorBody

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Malformed request (the message names the field)",
    401: "Missing or wrong bearer token",
    403: "The token lacks the endpoint's scope",
    404: "No such record",
    413: "Body over 1 MiB",
    429: "Over the token's rate; see Retry-After",
    503: "Database unavailable; retry later",
}


# One server-sent event; `data` is JSON text.
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"enum": ["conversation", "progress", "answer"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], mode: str = "serialization") -> dict[str, Any]:
        schema = model.model_json_schema(
            by_alias=True,
            ref_template=REF,
            mode=mode,  # type: ignore[arg-type]
        )
        for name, sub in schema.pop("$defs", {}).items():
            self.components.setdefault(name, sub)
        name = model.__name__
        self.components.setdefault(name, schema)
        return {"$ref": REF.format(model=name)}

    def fields(self, model: type[BaseModel]) -> list[tuple[str, dict[str, Any], bool]]:
        schema = model.model_json_schema(by_alias=True, ref_template=REF, mode="validation")
        for name, sub in schema.pop("$defs", {}).items():
            self.components.setdefault(name, sub)
        required = set(schema.get("required", []))
        out = []
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            options = prop.pop("anyOf", None)
            if options is not None:
                kept = [o for o in options if o.get("type") != "null"]
                if len(kept) == 1:
                    prop.update(kept[0])
                else:
                    prop["anyOf"] = kept
                if prop.get("default", 0) is None:
                    del prop["default"]
            out.append((name, prop, name in required))
        return out


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": endpoint.handler.__name__,
        "tags": list(endpoint.tags),
        "security": [{"bearer": [endpoint.scope]}],
        "x-scope": endpoint.scope,
    }
    if endpoint.description:
        op["description"] = endpoint.description
    parameters = []
    for where, model in (("path", endpoint.path_model), ("query", endpoint.query_model)):
        if model is None:
            continue
        for name, schema, required in schemas.fields(model):
            param: dict[str, Any] = {"name": name, "in": where, "schema": schema}
            if where == "path" or required:
                param["required"] = True
            if "description" in schema:
                param["description"] = schema["description"]
            parameters.append(param)
    if parameters:
        op["parameters"] = parameters
    if endpoint.body_model is not None:
        content: dict[str, Any] = {
            "application/json": {"schema": schemas.ref(endpoint.body_model, "validation")}
        }
        for media in endpoint.body_media:
            content[media] = {"schema": {"type": "string"}}
        op["requestBody"] = {"required": True, "content": content}
    responses: dict[str, Any] = {}
    if endpoint.response is not None:
        ok: dict[str, Any] = {"application/json": {"schema": schemas.ref(endpoint.response)}}
        if endpoint.stream:
            ok[endpoint.stream] = {"schema": SSE_EVENT}
        responses[str(endpoint.status)] = {"description": "OK", "content": ok}
    else:
        responses[str(endpoint.status)] = {"description": "OK"}
    error = {"application/json": {"schema": schemas.ref(ErrorBody)}}
    codes = {401, 403, 429, 503, *endpoint.errors}
    if endpoint.body_model is not None:
        codes |= {400, 413}
    if endpoint.query_model is not None or endpoint.path_model is not None:
        codes.add(400)
    for code in sorted(codes):
        responses[str(code)] = {"description": ERRORS[code], "content": error}
    op["responses"] = responses
    return op


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    from bot.http.api.routes import ENDPOINTS

    schemas = _Schemas()
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "InfraAI API",
            "version": "1",
            "description": (
                "Policies, proposals, jobs, alerts and the assistant over JSON. Bearer "
                "tokens with scopes (`read`, `policies:write`, `chat`); each token may make "
                f"{RATE_PER_SECOND:g} requests a second (bursts of {BURST}). Approvals are "
                "not in the API: they stay in Slack and the console."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
