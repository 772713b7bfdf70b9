"""The endpoints of `/api/v1`: policies, proposals, jobs, alerts, assets and scans, and the
assistant.

Reads need `read`; policy changes `policies:write`; the assistant `chat`. Approvals are not
here on purpose: they stay where the people are (Slack, the console), so no token, however
scoped, can approve, deny or otherwise move a proposal.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from aiohttp import web

from bot.http.api import schemas as s
from bot.http.api.framework import (
    ApiError,
    Call,
    Endpoint,
    decode_cursor,
    decode_json,
    encode_cursor,
    refuse_unstorable,
)
from core import records
from core.policy.spec import PolicyError, parse_policy_document
from core.policy.store import (
    PolicyNotFound,
    apply_policies,
    delete_policy,
    get_policy,
    list_policies,
    load_document,
    set_enabled,
)
from core.policy.testing import AlertUnderTest, describe_test

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _page(page: records.Page[Any]) -> dict[str, Any]:
    cursor = encode_cursor(page.next_before) if page.next_before is not None else None
    return {"items": page.items, "next_cursor": cursor}


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what}")


# ---- records ---------------------------------------------------------------------------------


async def _listed(call: Call, read: Any, **filters: Any) -> Any:
    """One page of a record (`read`: a `core.records.page_*`), as the query asks."""
    q: s.PageQuery = call.query
    page = records.Slice(q.limit, decode_cursor(q.cursor), q.since, q.until)
    async with call.runtime.sessions() as session:
        found = await read(session, page, **filters)
    return _page(found)


async def _one(call: Call, read: Any, what: str) -> Any:
    """One record by the path's id (`read`: a `core.records` getter), or 404."""
    async with call.runtime.sessions() as session:
        found = await read(session, call.path.id)
    if found is None:
        raise _not_found(f"{what} {call.path.id}")
    return found


async def list_proposals(call: Call) -> Any:
    q: s.ProposalQuery = call.query
    return await _listed(call, records.page_proposals, status=q.status, policy=q.policy)


async def get_proposal(call: Call) -> Any:
    return await _one(call, records.proposal_timeline, "proposal")


async def list_alerts(call: Call) -> Any:
    q: s.AlertQuery = call.query
    return await _listed(call, records.page_alerts, status=q.status, alertname=q.alertname)


async def get_alert(call: Call) -> Any:
    return await _one(call, records.get_alert, "alert")


async def list_jobs(call: Call) -> Any:
    q: s.JobQuery = call.query
    return await _listed(call, records.page_jobs, status=q.status, proposal_id=q.proposal)


# ---- policies --------------------------------------------------------------------------------


def _policy_out(spec: Any) -> s.PolicyOut:
    data = spec.model_dump(by_alias=True, mode="json")
    return s.PolicyOut.model_validate(data)


async def list_all_policies(call: Call) -> Any:
    async with call.runtime.sessions() as session:
        specs = [spec for _id, spec in await list_policies(session)]
    return s.PolicyList(items=[_policy_out(spec) for spec in specs])


async def show_policy(call: Call) -> Any:
    async with call.runtime.sessions() as session:
        try:
            return _policy_out(await get_policy(session, call.path.name))
        except PolicyNotFound:
            raise _not_found(f"policy named {call.path.name!r}") from None


def _parse_document(call: Call) -> list[Any]:
    """YAML or JSON, with the same all-or-nothing errors as `infraai policy apply`."""
    raw: bytes = call.body
    try:
        if call.request.content_type in YAML_TYPES:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "invalid", "body: not UTF-8") from None
            specs = load_document(text)
        else:
            specs = parse_policy_document(decode_json(raw))
    except PolicyError as exc:
        raise ApiError(400, "invalid", str(exc)) from None
    for spec in specs:  # YAML escapes can spell a NUL too
        refuse_unstorable(spec.model_dump(mode="json"), f"policy {spec.name}")
    return specs


async def apply(call: Call) -> Any:
    # Off the loop: a 1 MiB document can be thousands of policies, each compiling its RE2
    # matchers and Jinja templates.
    specs = await asyncio.to_thread(_parse_document, call)
    q: s.ApplyQuery = call.query
    async with call.runtime.sessions() as session, session.begin() as transaction:
        before = {spec.name: spec.to_yaml_dict() for _id, spec in await list_policies(session)}
        result = await apply_policies(session, specs, call.caller.actor, prune=q.prune)
        if q.dry_run:
            await transaction.rollback()  # the diff, and nothing written, audit included
    if not q.dry_run:
        call.runtime.policies.invalidate()
    after = {spec.name: spec.to_yaml_dict() for spec in specs}
    changes = {
        name: {"before": before.get(name), "after": after.get(name)}
        for name in (*result.created, *result.updated, *result.deleted)
    }
    return s.ApplyOut(
        dry_run=q.dry_run,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        deleted=result.deleted,
        changes={k: s.PolicyChange.model_validate(v) for k, v in changes.items()},
    )


async def _enable(call: Call, enabled: bool) -> Any:
    name = call.path.name
    async with call.runtime.sessions() as session:
        try:
            async with session.begin():
                await set_enabled(session, name, enabled, call.caller.actor)
            spec = await get_policy(session, name)
        except PolicyNotFound:
            raise _not_found(f"policy named {name!r}") from None
    call.runtime.policies.invalidate()
    return _policy_out(spec)


async def enable(call: Call) -> Any:
    return await _enable(call, True)


async def disable(call: Call) -> Any:
    return await _enable(call, False)


async def delete(call: Call) -> Any:
    name = call.path.name
    async with call.runtime.sessions() as session:
        try:
            async with session.begin():
                await delete_policy(session, name, call.caller.actor)
        except PolicyNotFound:
            raise _not_found(f"policy named {name!r}") from None
    call.runtime.policies.invalidate()
    return s.Deleted(deleted=name)


async def test(call: Call) -> Any:
    body: s.AlertUnderTestIn = call.body
    loaded = await call.runtime.policies.get()
    report = describe_test(
        loaded.policy_set,
        AlertUnderTest(dict(body.labels), dict(body.annotations), status=body.status),
    )
    return report.as_dict()


# ---- assets and scans ------------------------------------------------------------------------


async def topology(call: Call) -> Any:
    from core.discovery.store import by_subnet, list_assets

    q: s.AssetQuery = call.query
    async with call.runtime.sessions() as session:
        views = await list_assets(session, q.filter)
    return s.TopologyOut(
        subnets=[
            s.SubnetOut(subnet=subnet, hosts=[s.AssetOut.model_validate(v.as_dict()) for v in vs])
            for subnet, vs in by_subnet(views[: q.limit])
        ],
        total=len(views),
    )


async def list_scans(call: Call) -> Any:
    q: s.ScanQuery = call.query
    return await _listed(call, records.page_scans, status=q.status)


async def get_scan(call: Call) -> Any:
    return await _one(call, records.get_scan, "scan")


# ---- the assistant -------------------------------------------------------------------------


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def chat(call: Call) -> Any:
    """Ask the assistant; each token's conversations are its own."""
    from core.agent.tools import ToolContext

    body: s.ChatIn = call.body
    runtime = call.runtime
    conversation = body.conversation or secrets.token_hex(8)
    wants_stream = body.stream or "text/event-stream" in call.request.headers.get("Accept", "")
    stream: web.StreamResponse | None = None
    if wants_stream:
        stream = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await stream.prepare(call.request)
        await stream.write(_sse("conversation", {"conversation": conversation}))

    async def progress(doing: str) -> None:
        if stream is not None:
            await stream.write(_sse("progress", {"doing": doing}))

    context = ToolContext(
        user=call.caller.actor,
        conversation=f"api:{call.caller.owner}:{conversation}",
        channel=runtime.settings.infraai_channel,
        progress=progress,
    )
    assistant = await runtime.assistant()
    answer = await assistant.ask(body.message, context)
    out = s.ChatOut(
        conversation=conversation,
        answer=answer.text,
        ok=answer.ok,
        tool_calls=[s.ToolCallOut.model_validate(c) for c in answer.tool_calls],
    )
    if runtime.drain is not None:
        runtime.drain.wake()  # a proposal it made goes out now
    if stream is None:
        return out
    await stream.write(_sse("answer", out.model_dump(mode="json")))
    await stream.write_eof()
    return stream


# ---- the table ---------------------------------------------------------------------------------

E404, E400 = 404, 400
ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/policies",
        "List the policies",
        "read",
        list_all_policies,
        s.PolicyList,
        tags=("policies",),
    ),
    Endpoint(
        "POST",
        "/policies/apply",
        "Apply a policy document (all or nothing)",
        "policies:write",
        apply,
        s.ApplyOut,
        query_model=s.ApplyQuery,
        body_model=s.PolicyDocument,
        raw_body=True,
        body_media=YAML_TYPES,
        errors=(E400,),
        tags=("policies",),
        description="Creates and updates the policies in the document (and with `prune`, "
        "deletes the others). Every policy must be valid or nothing changes. With "
        "`dry_run=true` the answer is the diff and nothing is written.",
    ),
    Endpoint(
        "POST",
        "/policies/test",
        "Which policy an alert would match, and the exact action",
        "read",
        test,
        s.TestOut,
        body_model=s.AlertUnderTestIn,
        errors=(E400,),
        tags=("policies",),
        description="Records nothing.",
    ),
    Endpoint(
        "GET",
        "/policies/{name}",
        "One policy",
        "read",
        show_policy,
        s.PolicyOut,
        path_model=s.NamePath,
        errors=(E404,),
        tags=("policies",),
    ),
    Endpoint(
        "DELETE",
        "/policies/{name}",
        "Delete a policy",
        "policies:write",
        delete,
        s.Deleted,
        path_model=s.NamePath,
        errors=(E404,),
        tags=("policies",),
    ),
    Endpoint(
        "POST",
        "/policies/{name}/enable",
        "Enable a policy",
        "policies:write",
        enable,
        s.PolicyOut,
        path_model=s.NamePath,
        errors=(E404,),
        tags=("policies",),
    ),
    Endpoint(
        "POST",
        "/policies/{name}/disable",
        "Disable a policy",
        "policies:write",
        disable,
        s.PolicyOut,
        path_model=s.NamePath,
        errors=(E404,),
        tags=("policies",),
    ),
    Endpoint(
        "GET",
        "/proposals",
        "Proposals, newest first",
        "read",
        list_proposals,
        s.ProposalPage,
        query_model=s.ProposalQuery,
        errors=(E400,),
        tags=("proposals",),
    ),
    Endpoint(
        "GET",
        "/proposals/{id}",
        "A proposal's incident timeline",
        "read",
        get_proposal,
        s.TimelineOut,
        path_model=s.IdPath,
        errors=(E404,),
        tags=("proposals",),
        description="The proposal, the alert that opened it, its decision, every attempt "
        "of its job with output and errors, and its audit trail.",
    ),
    Endpoint(
        "GET",
        "/jobs",
        "Job runs, newest first",
        "read",
        list_jobs,
        s.JobPage,
        query_model=s.JobQuery,
        errors=(E400,),
        tags=("proposals",),
    ),
    Endpoint(
        "GET",
        "/alerts",
        "Alerts, newest first",
        "read",
        list_alerts,
        s.AlertPage,
        query_model=s.AlertQuery,
        errors=(E400,),
        tags=("alerts",),
    ),
    Endpoint(
        "GET",
        "/alerts/{id}",
        "One alert",
        "read",
        get_alert,
        s.AlertOut,
        path_model=s.IdPath,
        errors=(E404,),
        tags=("alerts",),
    ),
    Endpoint(
        "GET",
        "/assets",
        "Discovered hosts by subnet, with their services",
        "read",
        topology,
        s.TopologyOut,
        query_model=s.AssetQuery,
        errors=(E400,),
        tags=("assets",),
    ),
    Endpoint(
        "GET",
        "/scans",
        "Discovery scans, newest first",
        "read",
        list_scans,
        s.ScanPage,
        query_model=s.ScanQuery,
        errors=(E400,),
        tags=("assets",),
    ),
    Endpoint(
        "GET",
        "/scans/{id}",
        "One scan and what it changed",
        "read",
        get_scan,
        s.ScanOut,
        path_model=s.IdPath,
        errors=(E404,),
        tags=("assets",),
    ),
    Endpoint(
        "POST",
        "/chat",
        "Ask the assistant",
        "chat",
        chat,
        s.ChatOut,
        body_model=s.ChatIn,
        errors=(E400,),
        stream="text/event-stream",
        tags=("assistant",),
        description="The answer and the tools it called. It reads with its tools and may "
        "propose a change, which appears in Slack like any other proposal for a person to "
        "approve; it never acts. With `stream: true` (or `Accept: text/event-stream`) the "
        "answer comes as server-sent events: `conversation`, `progress`…, `answer`.",
    ),
]
