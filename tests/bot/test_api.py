"""`/api/v1` end to end through the aiohttp app, on SQLite and on real PostgreSQL: tokens and
scopes, policies (apply all-or-nothing, dry run, enable/disable/delete, test), the record
(proposals with their timeline, jobs, alerts, cursor pagination), errors in one shape, rate
limits, bounded bodies, and the rule that the API never moves a proposal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from bot.http.api import api_app
from bot.http.api.framework import LIMITER_KEY, ApiError, RateLimiter, authenticate
from bot.http.app import create_app
from core.api_tokens import ApiToken, digest_of, new_token, parse_tokens
from core.config import ConfigError, load_settings
from core.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import count, crashloop, install_policies, payload, policy, rows

ADMIN, ADMIN_ENTRY = new_token("gitops", frozenset({"read", "policies:write", "chat"}))
READER, READER_ENTRY = new_token("dashboards", frozenset({"read"}))
TOKENS = f"{ADMIN_ENTRY.entry()}; {READER_ENTRY.entry()}"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_READER = {"Authorization": f"Bearer {READER}"}
ALERTS = {"Authorization": "Bearer alerts-token"}


@pytest.fixture
async def api_runtime(db_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(
        make_settings(
            db_url,
            infraai_api_tokens=TOKENS,
            alerts_token="alerts-token",
            infraai_approvers=("U0ALICE",),
        )
    )
    await install_policies(runtime, policy())
    yield runtime
    await runtime.close()


@pytest.fixture
async def client(api_runtime: Runtime) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(api_runtime))) as test_client:
        yield test_client


async def _alerts(client: TestClient[Any, Any], *alerts: dict[str, Any]) -> None:
    response = await client.post("/alerts", json=payload(*alerts), headers=ALERTS)
    assert response.status == 200


async def _error(response: Any, status: int, code: str) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return str(body["error"]["message"])


# ---- tokens and scopes ---------------------------------------------------------------------------


async def test_without_a_token_or_with_a_wrong_one_the_answer_is_401(client) -> None:
    for headers in ({}, {"Authorization": "Bearer iai_nope"}, {"Authorization": f"Basic {ADMIN}"}):
        response = await client.get("/api/v1/proposals", headers=headers)
        await _error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_read_token_cannot_apply_enable_delete_or_chat(client, api_runtime) -> None:
    before = await rows(api_runtime, "SELECT name, enabled FROM policies")
    document = {"policies": [policy(name="other").to_yaml_dict()]}
    calls = [
        client.post("/api/v1/policies/apply", json=document, headers=AS_READER),
        client.post("/api/v1/policies/restart-crashlooping-pod/disable", headers=AS_READER),
        client.delete("/api/v1/policies/restart-crashlooping-pod", headers=AS_READER),
        client.post("/api/v1/chat", json={"message": "hi"}, headers=AS_READER),
    ]
    for call in calls:
        message = await _error(await call, 403, "forbidden")
        assert "scope" in message
    assert await rows(api_runtime, "SELECT name, enabled FROM policies") == before
    assert await count(api_runtime, "audit_events", "actor LIKE 'api:%'") == 0


async def test_the_read_token_reads(client) -> None:
    response = await client.get("/api/v1/policies", headers=AS_READER)
    assert response.status == 200
    [item] = (await response.json())["items"]
    assert item["name"] == "restart-crashlooping-pod" and item["continue"] is False


def _request_from(peer: str, headers: dict[str, str] | None = None) -> web.Request:
    class Transport:
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return (peer, 40000) if name == "peername" else default

        def is_closing(self) -> bool:
            return False

    return make_mocked_request("GET", "/api/v1/proposals", headers=headers, transport=Transport())


def test_no_token_configured_means_loopback_only_in_the_embedded_default() -> None:
    caller = authenticate(_request_from("127.0.0.1"), (), embedded=True)
    assert caller.owner == "loopback" and "policies:write" in caller.scopes
    assert authenticate(_request_from("::1"), (), embedded=True).owner == "loopback"
    with pytest.raises(ApiError) as refused:
        authenticate(_request_from("10.1.2.3"), (), embedded=True)
    assert refused.value.status == 401
    # A deployment (PostgreSQL): behind a port-forward or a sidecar everyone is loopback,
    # and policies:write can create auto policies. No token, no API.
    with pytest.raises(ApiError) as refused:
        authenticate(_request_from("127.0.0.1"), (), embedded=False)
    assert refused.value.status == 401 and "INFRAAI_API_TOKENS" in refused.value.message


async def test_a_deployment_without_tokens_refuses_even_loopback(db_url) -> None:
    runtime = Runtime.build(make_settings(db_url))
    try:
        async with TestClient(TestServer(create_app(runtime))) as client:
            response = await client.get("/api/v1/policies")
            if runtime.settings.is_sqlite:
                assert response.status == 200  # the embedded default, on this machine
            else:
                await _error(response, 401, "unauthorized")
    finally:
        await runtime.close()


def test_with_tokens_configured_loopback_needs_one_too() -> None:
    tokens = parse_tokens(TOKENS)
    with pytest.raises(ApiError):
        authenticate(_request_from("127.0.0.1"), tokens)
    caller = authenticate(_request_from("10.1.2.3", {"Authorization": f"Bearer {READER}"}), tokens)
    assert caller.owner == "dashboards" and caller.scopes == {"read"}


def test_tokens_are_configured_as_hashes_and_bad_entries_name_the_variable(monkeypatch) -> None:
    [token] = parse_tokens(f"ci read,policies:write sha256:{digest_of('x').hex()}")
    assert token == ApiToken("ci", frozenset({"read", "policies:write"}), digest_of("x"))
    for bad, why in [
        ("ci read", "expected 'OWNER SCOPES sha256:HEX'"),
        (f"ci admin sha256:{'0' * 64}", "unknown scope 'admin'"),
        ("ci read sha256:abc", "64 hex digits"),
        (f"ci read sha256:{'0' * 64}; ci chat sha256:{'1' * 64}", "listed twice"),
    ]:
        monkeypatch.setenv("INFRAAI_API_TOKENS", bad)
        with pytest.raises(ConfigError) as refused:
            load_settings()
        assert str(refused.value).startswith("INFRAAI_API_TOKENS: ")
        assert why in str(refused.value)
        assert "\n" not in str(refused.value)


async def test_a_token_made_by_the_cli_is_admitted_with_its_scopes(db_url, capsys) -> None:
    from bot.cli import main

    assert main(["api-token", "ci-pipeline", "read"]) == 0
    printed = capsys.readouterr().out.splitlines()
    token = printed[0].rsplit(" ", 1)[1]
    entry = printed[1].split(": ", 1)[1]
    assert token not in entry  # only the hash is configured
    runtime = Runtime.build(make_settings(db_url, infraai_api_tokens=entry))
    try:
        async with TestClient(TestServer(create_app(runtime))) as client:
            headers = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/api/v1/policies", headers=headers)).status == 200
            response = await client.delete("/api/v1/policies/x", headers=headers)
            await _error(response, 403, "forbidden")
    finally:
        await runtime.close()
    with pytest.raises(SystemExit) as refused:
        main(["api-token", "ci", "admin"])
    assert refused.value.code == 2
    assert capsys.readouterr().err == (
        "infraai: unknown scope 'admin'; scopes are read, policies:write, chat\n"
    )


async def test_text_no_database_can_keep_is_refused_not_failed(client, api_runtime) -> None:
    for url in ("/api/v1/jobs?status=%00", "/api/v1/policies/a%00b"):
        response = await client.get(url, headers=AS_READER)
        await _error(response, 400, "invalid")
    nul = {**policy(name="nul").to_yaml_dict(), "description": "a\u0000b"}
    response = await client.post(
        "/api/v1/policies/apply", data=json.dumps({"policies": [nul]}), headers=AS_ADMIN
    )
    assert "NUL" in await _error(response, 400, "invalid")
    response = await client.post(
        "/api/v1/policies/apply",
        data='policies:\n- {name: nul, matchers: [a="b"], action: k8s.restart_pod, '
        'description: "x\\0y", params: {namespace: n, pod: p}}',
        headers={**AS_ADMIN, "Content-Type": "application/yaml"},
    )
    assert "NUL" in await _error(response, 400, "invalid")
    assert await count(api_runtime, "policies") == 1


async def test_times_past_the_calendar_in_utc_are_refused_not_failed(client) -> None:
    for when in ("0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00"):
        for what in ("proposals", "alerts", "jobs", "scans"):
            response = await client.get(f"/api/v1/{what}?since={when}", headers=AS_READER)
            assert "query.since" in await _error(response, 400, "invalid")


async def test_ids_past_the_schema_are_refused_not_failed(client) -> None:
    for url in ("/api/v1/proposals/483809390355", "/api/v1/alerts/2147483648"):
        await _error(await client.get(url, headers=AS_READER), 400, "invalid")
    response = await client.get("/api/v1/jobs?proposal=99999999999", headers=AS_READER)
    await _error(response, 400, "invalid")


# ---- policies ------------------------------------------------------------------------------------


async def test_apply_dry_run_returns_the_diff_and_writes_nothing(client, api_runtime) -> None:
    changed = policy(priority=5).to_yaml_dict()
    new = policy(name="restart-api", matchers=['alertname="ApiDown"']).to_yaml_dict()
    document = {"policies": [changed, new]}
    response = await client.post(
        "/api/v1/policies/apply?dry_run=true", json=document, headers=AS_ADMIN
    )
    assert response.status == 200, await response.text()
    diff = await response.json()
    assert diff["dry_run"] is True
    assert diff["created"] == ["restart-api"] and diff["updated"] == ["restart-crashlooping-pod"]
    assert diff["changes"]["restart-crashlooping-pod"]["before"]["priority"] == 10
    assert diff["changes"]["restart-crashlooping-pod"]["after"]["priority"] == 5
    assert diff["changes"]["restart-api"]["before"] is None
    assert await count(api_runtime, "policies") == 1
    assert await count(api_runtime, "audit_events", "actor LIKE 'api:%'") == 0


async def test_apply_writes_audits_with_the_owner_and_takes_yaml(client, api_runtime) -> None:
    document = {"policies": [policy().to_yaml_dict(), policy(name="restart-api").to_yaml_dict()]}
    response = await client.post(
        "/api/v1/policies/apply",
        data=yaml.safe_dump(document),
        headers={**AS_ADMIN, "Content-Type": "application/yaml"},
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["created"] == ["restart-api"]
    [event] = await rows(
        api_runtime, "SELECT actor, verb, subject FROM audit_events WHERE actor LIKE 'api:%'"
    )
    assert dict(event) == {
        "actor": "api:gitops",
        "verb": "policy.created",
        "subject": "restart-api",
    }
    # The bot's policy cache sees it at once.
    loaded = await api_runtime.policies.get()
    assert "restart-api" in loaded.ids


async def test_one_bad_policy_applies_nothing_and_names_it(client, api_runtime) -> None:
    good = policy(name="restart-api").to_yaml_dict()
    bad = {**policy(name="broken").to_yaml_dict(), "matchers": ['alertname=~"(("']}
    response = await client.post(
        "/api/v1/policies/apply", json={"policies": [good, bad]}, headers=AS_ADMIN
    )
    message = await _error(response, 400, "invalid")
    assert "broken" in message and "matchers" in message
    assert await count(api_runtime, "policies") == 1
    for body in (b"{", b'{"policies": 3}', b"\xff"):
        response = await client.post("/api/v1/policies/apply", data=body, headers=AS_ADMIN)
        await _error(response, 400, "invalid")


async def test_enable_disable_delete_are_audited(client, api_runtime) -> None:
    name = "restart-crashlooping-pod"
    response = await client.post(f"/api/v1/policies/{name}/disable", headers=AS_ADMIN)
    assert response.status == 200 and (await response.json())["enabled"] is False
    response = await client.post(f"/api/v1/policies/{name}/enable", headers=AS_ADMIN)
    assert (await response.json())["enabled"] is True
    response = await client.delete(f"/api/v1/policies/{name}", headers=AS_ADMIN)
    assert await response.json() == {"deleted": name}
    events = await rows(
        api_runtime, "SELECT actor, verb FROM audit_events WHERE actor LIKE 'api:%' ORDER BY id"
    )
    assert [(e["actor"], e["verb"]) for e in events] == [
        ("api:gitops", "policy.disabled"),
        ("api:gitops", "policy.enabled"),
        ("api:gitops", "policy.deleted"),
    ]
    await _error(await client.get(f"/api/v1/policies/{name}", headers=AS_READER), 404, "not_found")
    await _error(
        await client.delete(f"/api/v1/policies/{name}", headers=AS_ADMIN), 404, "not_found"
    )


async def test_policy_test_says_what_would_happen_and_records_nothing(client, api_runtime) -> None:
    labels = {"alertname": "KubePodCrashLooping", "namespace": "prod", "pod": "api-1"}
    response = await client.post(
        "/api/v1/policies/test",
        json={"labels": {**labels, "severity": "critical"}},
        headers=AS_READER,
    )
    assert response.status == 200
    [match] = (await response.json())["matches"]
    assert match["policy"] == "restart-crashlooping-pod"
    assert match["params"] == {"namespace": "prod", "pod": "api-1"}
    assert match["target"] == "prod/api-1"
    assert await count(api_runtime, "proposals") == 0
    response = await client.post("/api/v1/policies/test", json={"labels": {}}, headers=AS_READER)
    await _error(response, 400, "invalid")


# ---- the record ----------------------------------------------------------------------------------


async def test_proposals_page_with_a_cursor_and_filter(client) -> None:
    await _alerts(client, *(crashloop(pod=f"api-{i}") for i in range(5)))
    seen: list[int] = []
    url = "/api/v1/proposals?limit=2"
    while True:
        response = await client.get(url, headers=AS_READER)
        assert response.status == 200
        page = await response.json()
        assert len(page["items"]) <= 2
        seen += [p["id"] for p in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/proposals?limit=2&cursor={page['next_cursor']}"
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 5
    response = await client.get("/api/v1/proposals?status=denied", headers=AS_READER)
    assert (await response.json()) == {"items": [], "next_cursor": None}
    response = await client.get("/api/v1/proposals?status=nonsense", headers=AS_READER)
    assert "query.status" in await _error(response, 400, "invalid")
    response = await client.get("/api/v1/proposals?cursor=bm9wZQ", headers=AS_READER)
    assert "cursor" in await _error(response, 400, "invalid")
    response = await client.get("/api/v1/proposals?since=yesterday", headers=AS_READER)
    await _error(response, 400, "invalid")
    response = await client.get("/api/v1/proposals?since=2020-01-01T00:00:00Z", headers=AS_READER)
    assert len((await response.json())["items"]) == 5


async def test_a_proposal_comes_with_its_alert_and_audit_trail(client, api_runtime) -> None:
    await _alerts(client, crashloop(pod="api-9"))
    [proposal] = await rows(api_runtime, "SELECT id FROM proposals")
    outcome = await api_runtime.approvals.decide(proposal["id"], "U0ALICE", approve=False)
    assert outcome.ok, outcome
    response = await client.get(f"/api/v1/proposals/{proposal['id']}", headers=AS_READER)
    assert response.status == 200
    timeline = await response.json()
    assert timeline["proposal"]["status"] == "denied"
    assert timeline["proposal"]["decided_by"] == "U0ALICE"
    assert timeline["alert"]["labels"]["pod"] == "api-9"
    assert [e["verb"] for e in timeline["audit"]] == ["proposal.created", "proposal.denied"]
    assert timeline["jobs"] == []
    await _error(await client.get("/api/v1/proposals/999", headers=AS_READER), 404, "not_found")
    await _error(await client.get("/api/v1/proposals/x", headers=AS_READER), 400, "invalid")


async def test_alerts_list_and_get(client) -> None:
    await _alerts(client, crashloop(pod="a"), crashloop(pod="b", status="resolved"))
    response = await client.get("/api/v1/alerts?status=firing", headers=AS_READER)
    [firing] = (await response.json())["items"]
    assert firing["labels"]["pod"] == "a" and firing["times_received"] == 1
    response = await client.get(f"/api/v1/alerts/{firing['id']}", headers=AS_READER)
    assert (await response.json())["fingerprint"] == firing["fingerprint"]
    response = await client.get("/api/v1/jobs", headers=AS_READER)
    assert await response.json() == {"items": [], "next_cursor": None}


# ---- errors, limits, bounds ----------------------------------------------------------------------


async def test_every_refusal_has_one_shape(client) -> None:
    await _error(await client.get("/api/v1/nowhere", headers=AS_READER), 404, "not_found")
    response = await client.put("/api/v1/proposals", headers=AS_READER)
    await _error(response, 405, "method_not_allowed")
    response = await client.get("/api/v1/proposals?limit=5&limit=6", headers=AS_READER)
    assert "more than once" in await _error(response, 400, "invalid")
    response = await client.get("/api/v1/policies?extra=1", headers=AS_READER)
    await _error(response, 400, "invalid")


async def test_bodies_are_bounded(client, api_runtime) -> None:
    response = await client.post(
        "/api/v1/policies/apply", data=b"x" * (1024 * 1024 + 1), headers=AS_ADMIN
    )
    await _error(response, 413, "too_large")
    assert await count(api_runtime, "policies") == 1


async def test_a_token_over_its_rate_is_told_when_to_come_back(client) -> None:
    limiter: RateLimiter = api_app(client.server.app)[LIMITER_KEY]
    limiter.rate, limiter.burst = 0.001, 3
    statuses = [(await client.get("/api/v1/policies", headers=AS_READER)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = await client.get("/api/v1/policies", headers=AS_READER)
    await _error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1
    # Another token has its own bucket.
    assert (await client.get("/api/v1/policies", headers=AS_ADMIN)).status == 200


async def test_the_api_cannot_move_a_proposal(client, api_runtime) -> None:
    """No endpoint, whatever its scope, approves, denies or changes a proposal."""
    from bot.http.api.routes import ENDPOINTS

    await _alerts(client, crashloop(pod="api-1"))
    [before] = await rows(api_runtime, "SELECT * FROM proposals")
    pid = before["id"]
    assert not [e for e in ENDPOINTS if "proposal" in e.path and e.method != "GET"]
    for method, path in [
        ("POST", f"/api/v1/proposals/{pid}"),
        ("PATCH", f"/api/v1/proposals/{pid}"),
        ("PUT", f"/api/v1/proposals/{pid}"),
        ("DELETE", f"/api/v1/proposals/{pid}"),
        ("POST", f"/api/v1/proposals/{pid}/approve"),
        ("POST", "/api/v1/proposals"),
    ]:
        response = await client.request(method, path, json={"status": "approved"}, headers=AS_ADMIN)
        assert response.status in (404, 405), (method, path)
    assert await rows(api_runtime, "SELECT * FROM proposals") == [before]


# ---- the document --------------------------------------------------------------------------------


async def test_the_openapi_document_describes_every_endpoint(client) -> None:
    from bot.http.api.routes import ENDPOINTS

    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    for endpoint in ENDPOINTS:
        op = document["paths"][endpoint.path][endpoint.method.lower()]
        assert op["x-scope"] == endpoint.scope
        assert "401" in op["responses"] and "403" in op["responses"]
    refs = json.dumps(document).count('"$ref"')
    schemas = document["components"]["schemas"]
    assert refs and {"ProposalOut", "TimelineOut", "ErrorBody", "PolicySpec"} <= set(schemas)


# ---- assets and scans ----------------------------------------------------------------------------


@pytest.mark.integration
async def test_assets_by_subnet_and_the_scan_history(client, api_runtime) -> None:
    """A real scan (nmap on 127.0.0.1, a port this test opens) read back through the API."""
    from core.commands import ScanReport, run_command
    from tests.discovery.helpers import listening, port_of

    with listening() as [sock]:
        port = port_of(sock)
        report = await run_command(api_runtime, "U0ALICE", f"scan 127.0.0.1 {port}")
    assert isinstance(report, ScanReport), report
    response = await client.get("/api/v1/assets", headers=AS_READER)
    assert response.status == 200
    topology = await response.json()
    assert topology["total"] == 1
    [subnet] = topology["subnets"]
    assert subnet["subnet"] == "127.0.0.0/24"
    [host] = subnet["hosts"]
    assert host["address"] == "127.0.0.1" and host["up"] is True
    assert [p["port"] for p in host["open_ports"]] == [port]
    response = await client.get("/api/v1/assets?limit=1&filter=127.0.0.1", headers=AS_READER)
    assert (await response.json())["total"] == 1
    response = await client.get("/api/v1/assets?filter=10.0.0.0/8", headers=AS_READER)
    assert await response.json() == {"subnets": [], "total": 0}

    response = await client.get("/api/v1/scans", headers=AS_READER)
    [scan] = (await response.json())["items"]
    assert scan["target"] == "127.0.0.1" and scan["status"] == "done"
    assert scan["requested_by"] == "U0ALICE" and scan["hosts_up"] == 1
    response = await client.get(f"/api/v1/scans/{scan['id']}", headers=AS_READER)
    assert (await response.json())["changes"] == scan["changes"]
    await _error(await client.get("/api/v1/scans/99", headers=AS_READER), 404, "not_found")
