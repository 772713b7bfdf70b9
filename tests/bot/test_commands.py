"""`/infraai …` end to end: signed slash commands into the real Bolt app, answers read where
Slack would show them (the command's response_url on the fake).

Every command's reply is ephemeral unless it changed something the channel should see
(policy changes, pause/resume); every refusal and error is ephemeral. Changes need an
approver. Runs on SQLite with in-process execution, plus the audited changes on PostgreSQL.
"""

from __future__ import annotations

import html
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.commands import COMMANDS, usage_of
from core.db.models import JobLog
from core.db.types import utcnow
from tests.fakes.kube_api import FakeKubeAPI, write_kubeconfig
from tests.fakes.slack import ResponsePost
from tests.fakes.slack_signing import slash_command_body
from tests.helpers import count, crashloop, payload, policy, rows
from tests.stack import APPROVER, CHANNEL, STRANGER, Stack, make_stack


@pytest.fixture
async def stack(sqlite_db: str) -> AsyncIterator[Stack]:
    async for s in make_stack(sqlite_db, policy(), redis=False):
        yield s


def text_of(post: ResponsePost) -> str:
    """Everything a person would read in the reply: fallback text and every block's text."""
    parts: list[str] = [str(post.body.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(post.body.get("blocks") or [])
    # Slack shows `&lt;` as `<`: compare with what a person reads.
    return html.unescape("\n".join(parts))


async def run(stack: Stack, text: str, user: str = APPROVER) -> ResponsePost:
    """Send `/infraai <text>` signed as Slack would; the answer posted to its response_url."""
    url = stack.slack.new_response_url(CHANNEL)
    body = slash_command_body(text, user_id=user, channel_id=CHANNEL, response_url=url)
    response = await stack.signed(body)
    assert response.status == 200
    assert await response.text() == ""  # acked at once; the answer goes to response_url
    [post] = await stack.slack.wait_for(lambda: stack.slack.responses(url), timeout=10)
    assert post.status == 200
    return post


def ephemeral(post: ResponsePost) -> bool:
    return post.body.get("response_type") == "ephemeral"


def in_channel(post: ResponsePost) -> bool:
    return post.body.get("response_type") == "in_channel"


# --- help and usage ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["help", "", "HELP"])
async def test_help_is_generated_from_the_docstrings(stack: Stack, text: str) -> None:
    post = await run(stack, text)
    assert ephemeral(post)
    shown = text_of(post)
    for name in COMMANDS:
        usage, description = usage_of(name)
        assert usage and description, f"{name} has no usable docstring"
        assert f"/infraai {usage}" in shown, name
        assert description in shown, name
    # In the registry's order, so related commands stay together.
    positions = [shown.index(f"/infraai {usage_of(n)[0]}") for n in COMMANDS]
    assert positions == sorted(positions)


@pytest.mark.parametrize("text", ["frobnicate", "delete everything", "approve 1", "🙂"])
async def test_unknown_input_gets_usage(stack: Stack, text: str) -> None:
    post = await run(stack, text)
    assert ephemeral(post)
    shown = text_of(post)
    assert "Unknown command" in shown
    assert text.split()[0].lower() in shown
    assert "proposals [status]" in shown and "policy list" in shown


async def test_ask_with_ollama_away_is_one_clear_sentence(stack: Stack) -> None:
    import asyncio

    from tests.helpers import eventually
    from tests.peers.prometheus_stack import free_port

    away = f"http://127.0.0.1:{free_port()}"
    stack.runtime.settings = stack.runtime.settings.model_copy(update={"ollama_base_url": away})
    await stack.command("ask why is api-1 crashlooping?")
    answers = await eventually(
        lambda: asyncio.sleep(
            0, [m.text for m in stack.slack.messages(CHANNEL) if "is unreachable" in m.text]
        ),
        bool,
        within=20,
        what="the answer in the question's thread",
    )
    assert answers[0].startswith(f"Ollama at {away} is unreachable")
    assert "Ask what?" in text_of(await run(stack, "ask"))
    # The deterministic commands do not need the model.
    assert "database" in text_of(await run(stack, "status"))


# --- policies ----------------------------------------------------------------------------

NEW_POLICY = """```yaml
policies:
  - name: scale-up-on-latency
    description: Add replicas when p99 latency is high
    priority: 20
    matchers:
      - alertname="HighLatency"
    action: k8s.scale
    params:
      namespace: "{{ labels.namespace }}"
      deployment: "{{ labels.deployment }}"
      replicas: "4"
```"""


async def policy_names(stack: Stack) -> list[str]:
    return [r["name"] for r in await rows(stack.runtime, "SELECT name FROM policies ORDER BY 1")]


async def test_policy_list_and_show(stack: Stack) -> None:
    listed = await run(stack, "policy list", user=STRANGER)
    assert ephemeral(listed)
    assert "restart-crashlooping-pod" in text_of(listed)
    assert "k8s.restart_pod" in text_of(listed)
    assert "restart-crashlooping-pod" in text_of(await run(stack, "policy", user=STRANGER))

    shown = await run(stack, "policy show restart-crashlooping-pod", user=STRANGER)
    assert ephemeral(shown)
    assert "name: restart-crashlooping-pod" in text_of(shown)
    assert 'alertname="KubePodCrashLooping"' in text_of(shown)

    missing = await run(stack, "policy show nope")
    assert ephemeral(missing) and "No policy named `nope`" in text_of(missing)
    bad = await run(stack, "policy show")
    assert ephemeral(bad) and "Which policy?" in text_of(bad)
    verb = await run(stack, "policy frob x")
    assert ephemeral(verb) and "Unknown policy verb `frob`" in text_of(verb)


@pytest.mark.parametrize("separator", [" ", "\n"])
async def test_an_approver_applies_a_policy_from_yaml(stack: Stack, separator: str) -> None:
    post = await run(stack, f"policy apply{separator}{NEW_POLICY}")
    assert in_channel(post), text_of(post)
    assert "1 created" in text_of(post)
    assert await policy_names(stack) == ["restart-crashlooping-pod", "scale-up-on-latency"]
    [audit] = await rows(
        stack.runtime,
        "SELECT actor, subject FROM audit_events WHERE verb = 'policy.created' "
        "AND subject = 'scale-up-on-latency'",
    )
    assert audit == {"actor": f"slack:{APPROVER}", "subject": "scale-up-on-latency"}
    # The engine uses it at once (the cache was invalidated).
    tested = await run(stack, "policy test alertname=HighLatency namespace=web deployment=api")
    assert "matches policy scale-up-on-latency" in text_of(tested)


async def test_text_as_slack_escapes_it_is_read_as_typed(stack: Stack) -> None:
    typed = NEW_POLICY.replace("when p99 latency is high", "when p99 > 1s & rising")
    escaped = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert "&gt;" in escaped
    post = await run(stack, f"policy apply {escaped}")
    assert in_channel(post), text_of(post)
    shown = await run(stack, "policy show scale-up-on-latency")
    assert "when p99 > 1s & rising" in text_of(shown)


async def test_an_invalid_policy_is_refused_naming_the_field(stack: Stack) -> None:
    broken = NEW_POLICY.replace("k8s.scale", "k8s.explode")
    post = await run(stack, f"policy apply {broken}")
    assert ephemeral(post)
    assert "scale-up-on-latency" in text_of(post) and "action" in text_of(post)
    assert await policy_names(stack) == ["restart-crashlooping-pod"]
    not_yaml = await run(stack, "policy apply ```: : :```")
    assert ephemeral(not_yaml) and "YAML" in text_of(not_yaml)


async def test_enable_disable_delete_for_approvers(stack: Stack) -> None:
    disabled = await run(stack, "policy disable restart-crashlooping-pod")
    assert in_channel(disabled)
    assert f"disabled by <@{APPROVER}>" in text_of(disabled)
    [state] = await rows(stack.runtime, "SELECT enabled FROM policies")
    assert not state["enabled"]
    # A disabled policy proposes nothing.
    assert (await stack.post_alerts(payload(crashloop())))["proposals"] == 0

    again = await run(stack, "policy disable restart-crashlooping-pod")
    assert "already disabled" in text_of(again)
    enabled = await run(stack, "policy enable restart-crashlooping-pod")
    assert in_channel(enabled) and "enabled by" in text_of(enabled)
    assert (await stack.post_alerts(payload(crashloop(pod="api-2"))))["proposals"] == 1

    deleted = await run(stack, "policy delete restart-crashlooping-pod")
    assert in_channel(deleted) and "deleted by" in text_of(deleted)
    assert await policy_names(stack) == []
    gone = await run(stack, "policy delete restart-crashlooping-pod")
    assert ephemeral(gone) and "No policy named" in text_of(gone)
    usage = await run(stack, "policy enable")
    assert ephemeral(usage) and "policy enable NAME" in text_of(usage)


@pytest.mark.parametrize(
    "text",
    [
        f"policy apply {NEW_POLICY}",
        "policy enable restart-crashlooping-pod",
        "policy disable restart-crashlooping-pod",
        "policy delete restart-crashlooping-pod",
    ],
)
async def test_policy_changes_are_refused_to_non_approvers(stack: Stack, text: str) -> None:
    before = await rows(stack.runtime, "SELECT name, enabled, updated_at FROM policies")
    audits = await count(stack.runtime, "audit_events")
    post = await run(stack, text, user=STRANGER)
    assert ephemeral(post)
    assert "Only approvers may" in text_of(post)
    assert await rows(stack.runtime, "SELECT name, enabled, updated_at FROM policies") == before
    assert await count(stack.runtime, "audit_events") == audits


async def test_policy_test_is_a_dry_run(stack: Stack) -> None:
    post = await run(
        stack,
        "policy test alertname=KubePodCrashLooping namespace=prod pod=api-7 severity=critical",
        user=STRANGER,
    )
    assert ephemeral(post)
    shown = text_of(post)
    assert "matches policy restart-crashlooping-pod" in shown
    assert 'k8s.restart_pod {"namespace": "prod", "pod": "api-7"}' in shown
    assert await count(stack.runtime, "proposals") == 0
    assert await count(stack.runtime, "alerts") == 0
    nothing = await run(stack, "policy test alertname=Other")
    assert "no policy matches" in text_of(nothing)
    bad = await run(stack, "policy test not-a-pair")
    assert ephemeral(bad) and "expected name=value" in text_of(bad)
    empty = await run(stack, "policy test")
    assert ephemeral(empty) and "Give the alert's labels" in text_of(empty)


# --- proposals and jobs ------------------------------------------------------------------


async def test_proposals_with_and_without_a_status(stack: Stack) -> None:
    assert "No proposals" in text_of(await run(stack, "proposals"))
    await stack.post_alerts(payload(crashloop(pod="api-1"), crashloop(pod="api-2")))
    await stack.runtime.approvals.decide(1, APPROVER, approve=False)

    listed = await run(stack, "proposals", user=STRANGER)
    assert ephemeral(listed)
    shown = text_of(listed)
    assert "#1" in shown and "#2" in shown and "prod/api-2" in shown
    assert shown.index("#2") < shown.index("#1")  # newest first

    pending = text_of(await run(stack, "proposals pending"))
    assert "#2" in pending and "#1" not in pending
    denied = text_of(await run(stack, "proposals DENIED"))
    assert "#1" in denied and "#2" not in denied
    assert "No proposals" in text_of(await run(stack, "proposals succeeded"))

    bad = await run(stack, "proposals sideways")
    assert ephemeral(bad)
    assert "Unknown status `sideways`" in text_of(bad) and "pending" in text_of(bad)


async def test_jobs_lists_the_last_runs(stack: Stack) -> None:
    assert "No jobs yet" in text_of(await run(stack, "jobs"))
    await stack.post_alerts(payload(*(crashloop(pod=f"api-{i}") for i in range(3))))
    async with stack.runtime.sessions() as session, session.begin():
        for proposal_id in (1, 2, 3):
            session.add(
                JobLog(
                    proposal_id=proposal_id,
                    rq_job_id=f"proposal-{proposal_id}",
                    status="succeeded" if proposal_id != 2 else "failed",
                    started_at=utcnow(),
                    finished_at=utcnow(),
                    duration=0.25,
                    output="deleted pod",
                    error='pods "api-1" is forbidden' if proposal_id == 2 else None,
                    worker_name="worker-a",
                )
            )
    post = await run(stack, "jobs", user=STRANGER)
    assert ephemeral(post)
    shown = text_of(post)
    assert all(f"#{i}" in shown for i in (1, 2, 3))
    assert "forbidden" in shown and "worker-a" in shown
    two = text_of(await run(stack, "jobs 2"))
    assert "#3" in two and "#2" in two and "#1" not in two
    for bad, why in [("jobs many", "not a number"), ("jobs 0", "between 1 and 100")]:
        post = await run(stack, bad)
        assert ephemeral(post) and why in text_of(post) and "jobs [n]" in text_of(post)


# --- pause / resume ----------------------------------------------------------------------


async def pause_audits(stack: Stack) -> list[dict[str, Any]]:
    return await rows(
        stack.runtime,
        "SELECT actor, verb, subject FROM audit_events WHERE verb IN ('pause', 'resume') "
        "ORDER BY id",
    )


async def test_pause_and_resume_are_for_approvers_and_audited(stack: Stack) -> None:
    refused = await run(stack, "pause", user=STRANGER)
    assert ephemeral(refused) and "Only approvers may pause" in text_of(refused)
    assert await pause_audits(stack) == []

    paused = await run(stack, "pause")
    assert in_channel(paused)
    assert "paused" in text_of(paused) and f"<@{APPROVER}>" in text_of(paused)
    assert "is *paused*" in text_of(await run(stack, "status"))
    again = await run(stack, "pause")
    assert ephemeral(again) and "already paused" in text_of(again)

    refused = await run(stack, "resume", user=STRANGER)
    assert ephemeral(refused) and "Only approvers may resume" in text_of(refused)
    resumed = await run(stack, "resume")
    assert in_channel(resumed) and "resumed" in text_of(resumed)
    assert "Auto-remediation is on" in text_of(await run(stack, "status"))

    assert await pause_audits(stack) == [
        {"actor": APPROVER, "verb": "pause", "subject": "auto_paused"},
        {"actor": APPROVER, "verb": "resume", "subject": "auto_paused"},
    ]


async def test_pause_holds_auto_policies_for_a_person(stack: Stack) -> None:
    await run(stack, f"policy apply {NEW_POLICY.replace('priority: 20', 'approval: auto')}")
    await run(stack, "pause")
    alert = {"alertname": "HighLatency", "namespace": "web", "deployment": "api"}
    from tests.helpers import alert as make_alert

    assert (await stack.post_alerts(payload(make_alert(alert))))["proposals"] == 1
    [proposal] = await rows(stack.runtime, "SELECT status FROM proposals")
    assert proposal["status"] == "pending"


# --- status --------------------------------------------------------------------------------


def status_lines(post: ResponsePost) -> dict[str, str]:
    """name → the line that reports it (`✅ *database* — ok: …`)."""
    found: dict[str, str] = {}
    for line in text_of(post).splitlines():
        for name in ("database", "queue", "kubernetes", "vsphere"):
            if f"*{name}*" in line:
                found[name] = line
    return found


async def test_status_reports_each_integration(stack: Stack) -> None:
    post = await run(stack, "status", user=STRANGER)
    assert ephemeral(post)
    lines = status_lines(post)
    assert set(lines) == {"database", "queue", "kubernetes", "vsphere"}
    assert "— ok" in lines["database"] and "— ok" in lines["queue"]
    assert "not configured" in lines["vsphere"] and "VSPHERE_HOST" in lines["vsphere"]
    assert "not configured" in lines["kubernetes"]


async def test_status_says_which_integration_fails_and_why(sqlite_db: str, tmp_path: Path) -> None:
    kube = FakeKubeAPI()
    url = await kube.start()
    healthy = write_kubeconfig(tmp_path / "kubeconfig", url)
    try:
        async for stack in make_stack(sqlite_db, redis=False, kubeconfig=str(healthy)):
            lines = status_lines(await run(stack, "status"))
            assert "✅" in lines["kubernetes"] and "— ok" in lines["kubernetes"]
    finally:
        await kube.stop()
    # The same cluster gone: failing, with the reason.
    async for stack in make_stack(sqlite_db, redis=False, kubeconfig=str(healthy)):
        lines = status_lines(await run(stack, "status"))
        assert "❌" in lines["kubernetes"] and "failing" in lines["kubernetes"]
        assert len(lines["kubernetes"].split("failing", 1)[1].strip(" :")) > 5


async def test_status_reports_a_queue_that_is_down(sqlite_db: str) -> None:
    async for stack in make_stack(sqlite_db, redis=False, redis_url="redis://127.0.0.1:1/0"):
        lines = status_lines(await run(stack, "status"))
        assert "❌" in lines["queue"] and "failing" in lines["queue"]
        assert "— ok" in lines["database"]


# --- errors --------------------------------------------------------------------------------


async def test_a_command_that_crashes_answers_ephemerally_without_a_traceback(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(inv: Any) -> Any:
        raise RuntimeError("database exploded: password=hunter2")

    monkeypatch.setitem(COMMANDS, "jobs", broken)
    post = await run(stack, "jobs")
    assert ephemeral(post)
    assert "Something went wrong" in text_of(post)
    assert "hunter2" not in json.dumps(post.body) and "Traceback" not in json.dumps(post.body)


# --- on PostgreSQL --------------------------------------------------------------------------


@pytest.mark.integration
async def test_changes_are_audited_on_postgresql(pg_db: str) -> None:
    async for stack in make_stack(pg_db, policy(), redis=False):
        await run(stack, "pause")
        await run(stack, "resume")
        await run(stack, "policy disable restart-crashlooping-pod")
        await run(stack, f"policy apply {NEW_POLICY}")
        await run(stack, "policy delete scale-up-on-latency")
        audits = await rows(
            stack.runtime, "SELECT actor, verb, subject FROM audit_events ORDER BY id"
        )
        verbs = [(a["verb"], a["subject"]) for a in audits if a["actor"] != "test"]
        assert verbs == [
            ("pause", "auto_paused"),
            ("resume", "auto_paused"),
            ("policy.disabled", "restart-crashlooping-pod"),
            ("policy.created", "scale-up-on-latency"),
            ("policy.deleted", "scale-up-on-latency"),
        ]
