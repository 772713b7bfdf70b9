"""Block Kit builders: what each message shows, and Slack's limits under absurd inputs."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.slack.blocks import (
    APPROVE_ACTION,
    DENY_ACTION,
    GROUP_APPROVE_ACTION,
    GROUP_BUTTON_VALUE,
    GROUP_DENY_ACTION,
    Message,
    error_message,
    group_detail_messages,
    group_message,
    help_message,
    jobs_message,
    policies_message,
    proposal_message,
    proposals_message,
    status_message,
)
from core.cards import AlertInfo, ProposalCard
from core.policy.spec import PolicySpec
from core.proposals import ProposalView

NOW = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
HUGE = "x&<y>" * 2_000  # 10 kB that grows when escaped
BROKEN_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def make_alert(**overrides: Any) -> AlertInfo:
    values: dict[str, Any] = {
        "alertname": "KubePodCrashLooping",
        "status": "firing",
        "labels": {
            "alertname": "KubePodCrashLooping",
            "namespace": "prod",
            "pod": "api-1",
            "severity": "critical",
        },
        "annotations": {
            "summary": "Pod prod/api-1 is crashlooping",
            "runbook_url": "https://runbooks.example/crashloop",
        },
        "generator_url": "http://prometheus:9090/graph?g0.expr=rate(x[5m])",
        "starts_at": NOW - timedelta(minutes=5),
    }
    values.update(overrides)
    return AlertInfo(**values)


def make_card(id: int = 42, **overrides: Any) -> ProposalCard:
    values: dict[str, Any] = {
        "id": id,
        "status": "pending",
        "status_reason": None,
        "source": "alert",
        "action": "k8s.restart_pod",
        "action_description": "Delete a pod so its controller recreates it.",
        "risk": "write",
        "params": {"namespace": "prod", "pod": f"api-{id}"},
        "target": f"prod/api-{id}",
        "policy_name": "restart-crashlooping-pod",
        "policy_description": "Delete a crashlooping pod",
        "approval": "required",
        "approvers": ("U012ABCDEF", "S0PLATFORM"),
        "dry_run": False,
        "requested_by": "alertmanager",
        "decided_by": None,
        "decided_at": None,
        "expires_at": NOW + timedelta(hours=1),
        "created_at": NOW,
        "channel": "C0OPS",
        "message_ts": None,
        "thread_ts": None,
        "alert": make_alert(),
    }
    values.update(overrides)
    return ProposalCard(**values)


def make_view(id: int = 1, **overrides: Any) -> ProposalView:
    values: dict[str, Any] = {
        "id": id,
        "source": "alert",
        "status": "pending",
        "status_reason": None,
        "policy_name": "restart-crashlooping-pod",
        "action": "k8s.restart_pod",
        "params": {"namespace": "prod", "pod": "api-1"},
        "target": "prod/api-1",
        "risk": "write",
        "approval": "required",
        "dry_run": False,
        "requested_by": "alertmanager",
        "decided_by": None,
        "created_at": NOW,
        "decided_at": None,
        "expires_at": NOW + timedelta(hours=1),
        "alert_id": 1,
    }
    values.update(overrides)
    return ProposalView(**values)


# --- helpers ---------------------------------------------------------------------------


def _text(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else str(obj or "")


def _mrkdwn_texts(node: Any) -> list[str]:
    if isinstance(node, list):
        return [t for item in node for t in _mrkdwn_texts(item)]
    if not isinstance(node, dict):
        return []
    found = [node["text"]] if node.get("type") == "mrkdwn" else []
    return found + [t for value in node.values() for t in _mrkdwn_texts(value)]


def assert_within_limits(blocks: list[dict[str, Any]], text: str) -> None:
    """Every Block Kit limit InfraAI relies on (what Slack answers `invalid_blocks` to)."""
    assert len(text) <= 4000
    for mrkdwn in [text, *_mrkdwn_texts(blocks)]:
        assert not BROKEN_ENTITY.search(mrkdwn), mrkdwn  # a cut never splits `&amp;`
    assert 1 <= len(blocks) <= 50
    block_ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids)), block_ids
    for block in blocks:
        assert len(block.get("block_id", "")) <= 255
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            assert len(_text(block.get("text"))) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(_text(f)) <= 2000 for f in block.get("fields", []))
        elif block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= 150
        elif block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(_text(e)) <= 2000 for e in block["elements"])
        for element in block.get("elements", []):
            if element.get("type") != "button":
                continue
            assert 1 <= len(element["text"]["text"]) <= 75
            assert len(element["value"]) <= 2000
            assert len(element["action_id"]) <= 255
            if "confirm" in element:
                confirm = element["confirm"]
                assert len(confirm["title"]["text"]) <= 100
                assert len(confirm["text"]["text"]) <= 300
                assert len(confirm["confirm"]["text"]) <= 30
                assert len(confirm["deny"]["text"]) <= 30


def all_text(message: Message) -> str:
    text, blocks = message
    return text + "\n" + json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        e["action_id"]: e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("type") == "button"
    }


def block(blocks: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    return next(b for b in blocks if b.get("block_id", "").endswith(suffix))


# --- one proposal ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "badge"),
    [
        ({"status": "approved", "decided_by": "U0ALICE"}, "✅ Approved by <@U0ALICE> · queued"),
        ({"status": "running"}, "🏃 Running"),
        ({"status": "running", "attempts": 2}, "🏃 Running (attempt 2)"),
        ({"status": "succeeded"}, "✅ Succeeded"),
        ({"status": "failed", "status_reason": "pod not found"}, "❌ Failed: pod not found"),
        ({"status": "failed", "last_error": "timeout after 30s"}, "❌ Failed: timeout after 30s"),
        ({"status": "denied", "decided_by": "U0BOB"}, "🚫 Denied by <@U0BOB>"),
        ({"status": "expired"}, "⌛ Expired"),
        (
            {"status": "superseded", "status_reason": "alert resolved before approval"},
            "🔕 Superseded: alert resolved before approval",
        ),
        ({"status": "superseded"}, "🔕 Superseded: resolved before approval"),
        (
            {"status": "rate_limited", "status_reason": "5 runs in the last hour"},
            "🧯 Rate limited: 5 runs in the last hour",
        ),
        (
            {"status": "approved", "approval": "auto", "decided_by": "auto"},
            "✅ Approved by auto-remediation · queued · 🤖 auto-remediation",
        ),
        ({"status": "succeeded", "approval": "auto"}, "✅ Succeeded · 🤖 auto-remediation"),
    ],
)
def test_status_badge_and_no_buttons_once_decided(overrides: dict[str, Any], badge: str) -> None:
    text, blocks = proposal_message(make_card(**overrides), NOW)
    assert block(blocks, "-status")["text"]["text"] == f"*{badge}*"
    assert badge in text
    assert not buttons(blocks)
    assert_within_limits(blocks, text)


def test_pending_has_approve_and_deny_carrying_the_id() -> None:
    text, blocks = proposal_message(make_card(id=7), NOW)
    found = buttons(blocks)
    assert set(found) == {APPROVE_ACTION, DENY_ACTION}
    assert found[APPROVE_ACTION]["value"] == found[DENY_ACTION]["value"] == "7"
    assert found[APPROVE_ACTION]["style"] == "primary"
    assert found[DENY_ACTION]["style"] == "danger"
    assert block(blocks, "-actions")["block_id"] == "proposal-7-actions"
    assert not [b for b in blocks if b.get("block_id") == "proposal-7-status"]
    assert "awaiting approval" in text


@pytest.mark.parametrize(
    ("risk", "dry_run", "confirmed"),
    [("write", False, True), ("write", True, False), ("read", False, False)],
)
def test_approve_confirms_only_real_writes(risk: str, dry_run: bool, confirmed: bool) -> None:
    _, blocks = proposal_message(make_card(risk=risk, dry_run=dry_run), NOW)
    assert ("confirm" in buttons(blocks)[APPROVE_ACTION]) is confirmed
    assert "confirm" not in buttons(blocks)[DENY_ACTION]


def test_pending_past_expiry_shows_expired_and_no_buttons() -> None:
    _, blocks = proposal_message(make_card(expires_at=NOW - timedelta(minutes=1)), NOW)
    assert not buttons(blocks)
    assert "*Expired*" in json.dumps(block(blocks, "-meta"))


def test_block_ids_are_stable() -> None:
    first = proposal_message(make_card(), NOW)
    again = proposal_message(make_card(), NOW)
    assert first == again
    assert all(b["block_id"].startswith("proposal-42-") for b in first[1])


@pytest.mark.parametrize(
    ("severity", "emoji"),
    [("critical", "🔴"), ("warning", "🟠"), ("info", "🔵"), ("", "⚪"), ("weird", "⚪")],
)
def test_header_severity_emoji(severity: str, emoji: str) -> None:
    alert = make_alert(labels={"alertname": "X", "severity": severity}, alertname="HighLatency")
    _, blocks = proposal_message(make_card(alert=alert), NOW)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == f"{emoji} HighLatency · #42"


@pytest.mark.parametrize(("source", "title"), [("chat", "Chat request"), ("command", "Command")])
def test_chat_and_command_proposals(source: str, title: str) -> None:
    card = make_card(source=source, alert=None, requested_by="U0CAROL", policy_name=None)
    text, blocks = proposal_message(card, NOW)
    assert blocks[0]["text"]["text"] == f"⚪ {title} · #42"
    assert "What fired" not in all_text((text, blocks))
    assert "*Requested by*\\n<@U0CAROL>" in json.dumps(block(blocks, "-meta"))


def test_what_fired_key_labels_first_summary_and_links() -> None:
    labels = {
        "alertname": "KubePodCrashLooping",
        "zone": "eu-1",
        "severity": "critical",
        "container": "api",
        "pod": "api-1",
        "namespace": "prod",
    }
    _, blocks = proposal_message(make_card(alert=make_alert(labels=labels)), NOW)
    fields = [f["text"].split("\n")[0] for f in block(blocks, "-labels")["fields"]]
    assert fields == ["*namespace*", "*pod*", "*severity*", "*container*", "*zone*"]
    summary = block(blocks, "-summary")["text"]["text"]
    assert "Pod prod/api-1 is crashlooping" in summary
    assert "<https://runbooks.example/crashloop|📖 Runbook>" in summary
    assert "|📈 Prometheus graph>" in summary


def test_what_infraai_proposes() -> None:
    _, blocks = proposal_message(make_card(), NOW)
    text = block(blocks, "-proposes")["text"]["text"]
    assert "`k8s.restart_pod`" in text
    assert "Delete a pod so its controller recreates it." in text
    assert "```namespace: prod\npod: api-42```" in text
    assert "*Target:* `prod/api-42`" in text
    assert "⚠️ changes infrastructure" in text
    assert "dry run" not in text
    read = proposal_message(make_card(risk="read", dry_run=True), NOW)[1]
    text = block(read, "-proposes")["text"]["text"]
    assert "read-only" in text
    assert "🧪 dry run: nothing will be changed" in text


@pytest.mark.parametrize(
    ("approvers", "shown"),
    [
        (("U012ABCDEF",), "<@U012ABCDEF>"),
        (("S0PLATFORM",), "<!subteam^S0PLATFORM>"),
        (("W0ENTERPRISE", "S0SRE"), "<@W0ENTERPRISE>, <!subteam^S0SRE>"),
        ((), "anyone in INFRAAI_APPROVERS"),
        (("<!channel>",), "&lt;!channel&gt;"),
    ],
)
def test_approvers(approvers: tuple[str, ...], shown: str) -> None:
    _, blocks = proposal_message(make_card(approvers=approvers), NOW)
    fields = block(blocks, "-meta")["fields"]
    assert fields[0]["text"] == f"*May approve*\n{shown}"


def test_expiry_uses_slack_date_formatting() -> None:
    _, blocks = proposal_message(make_card(), NOW)
    expires = block(blocks, "-meta")["fields"][1]["text"]
    epoch = int((NOW + timedelta(hours=1)).timestamp())
    assert expires == (
        f"*Expires*\n<!date^{epoch}^{{date_short_pretty}} {{time}}|2026-11-29 09:30 UTC> (in 1 h)"
    )


def test_context_shows_last_result_and_error() -> None:
    card = make_card(status="failed", status_reason="gave up", last_error="HTTP 500", attempts=3)
    _, blocks = proposal_message(card, NOW)
    notes = [e["text"] for e in block(blocks, "-context")["elements"]]
    assert notes == ["*Last error:* HTTP 500", "3 attempts"]
    _, blocks = proposal_message(make_card(status="succeeded", last_result="pod deleted"), NOW)
    assert block(blocks, "-context")["elements"][0]["text"] == "*Last result:* pod deleted"


@pytest.mark.parametrize(
    "overrides",
    [
        {"alert": make_alert(labels={"team": "<!channel>"})},
        {"alert": make_alert(annotations={"summary": "<!here> & <@U0EVIL>"})},
        {"params": {"pod": "<!everyone>"}, "target": "<!channel>"},
        {"status": "failed", "status_reason": "<https://evil|click>"},
    ],
)
def test_user_strings_are_escaped(overrides: dict[str, Any]) -> None:
    text, blocks = proposal_message(make_card(**overrides), NOW)
    rendered = all_text((text, blocks))
    for injected in ("<!channel>", "<!here>", "<!everyone>", "<@U0EVIL>", "<https://evil"):
        assert injected not in rendered
    assert "&lt;" in rendered


def test_non_http_links_are_not_linked() -> None:
    alert = make_alert(annotations={"runbook_url": "javascript:alert(1)"}, generator_url=None)
    _, blocks = proposal_message(make_card(alert=alert), NOW)
    assert "Runbook" not in all_text(("", blocks))


def test_absurd_alert_is_truncated_with_counts() -> None:
    labels = {f"label{i:03}": HUGE for i in range(500)} | {"namespace": "prod"}
    annotations = {"summary": HUGE, "description": HUGE + "y", "runbook_url": "https://x/" + HUGE}
    alert = make_alert(alertname="A" * 1000, labels=labels, annotations=annotations)
    card = make_card(
        alert=alert,
        params={f"p{i}": HUGE for i in range(100)},
        target="t" * 10_000,
        action_description=HUGE,
        approvers=tuple(f"U{i:05}" for i in range(1000)),
        policy_description=HUGE,
        last_result=HUGE,
        last_error="<" * 10_000,
        status_reason=HUGE,
    )
    text, blocks = proposal_message(card, NOW)
    assert_within_limits(blocks, text)
    assert block(blocks, "-more-labels")["elements"][0]["text"] == "… and 491 more labels"
    assert "… and 88 more params" in block(blocks, "-proposes")["text"]["text"]
    assert " and 980 more" in block(blocks, "-meta")["fields"][0]["text"]
    assert blocks[0]["text"]["text"].endswith("… · #42")


# --- alert storms ----------------------------------------------------------------------


def storm(count: int, **overrides: Any) -> list[ProposalCard]:
    return [make_card(id=i, **overrides) for i in range(1, count + 1)]


def test_group_message_summary_counts_and_buttons() -> None:
    cards = storm(12)
    cards[0] = dataclasses.replace(cards[0], status="succeeded")
    cards[1] = dataclasses.replace(cards[1], status="failed")
    text, blocks = group_message(cards, NOW)
    assert_within_limits(blocks, text)
    summary = block(blocks, "-summary")["text"]["text"]
    assert summary.startswith(
        "*12 proposals* from policy `restart-crashlooping-pod` — 12 pods in `prod`"
    )
    assert "⏳ 10 pending · ✅ 1 succeeded · ❌ 1 failed" in summary
    assert "12 proposals from policy restart-crashlooping-pod — 12 pods in `prod`" in text
    assert "⚠️ changes infrastructure" in block(blocks, "-action")["text"]["text"]
    targets = block(blocks, "-targets-0")["text"]["text"]
    assert targets.count("• ") == 10
    assert targets.endswith("… and 2 more — details in the thread")
    found = buttons(blocks)
    assert set(found) == {GROUP_APPROVE_ACTION, GROUP_DENY_ACTION}
    assert {b["value"] for b in found.values()} == {GROUP_BUTTON_VALUE}
    assert "," not in GROUP_BUTTON_VALUE
    confirm = found[GROUP_APPROVE_ACTION]["confirm"]
    assert confirm["title"]["text"] == "Approve 10 pending proposals?"
    assert found[GROUP_APPROVE_ACTION]["text"]["text"] == "Approve all 10"


@pytest.mark.parametrize(
    ("action", "params", "noun"),
    [
        ("k8s.restart_pod", {"namespace": "prod", "pod": "a"}, "3 pods in `prod`"),
        ("k8s.rollout_restart", {"namespace": "prod", "deployment": "a"}, "3 deployments"),
        ("vsphere.reset_vm", {"vm": "db-1"}, "3 VMs"),
        ("prometheus.query", {"query": "up"}, "3 targets"),
    ],
)
def test_group_noun(action: str, params: dict[str, Any], noun: str) -> None:
    _, blocks = group_message(storm(3, action=action, params=params, alert=None), NOW)
    assert f"— {noun}" in block(blocks, "-summary")["text"]["text"]


def test_group_namespaces_counted() -> None:
    cards = [
        make_card(id=i, params={"namespace": ns, "pod": "p"})
        for i, ns in enumerate(["prod"] * 3 + ["staging"] * 2 + ["dev"])
    ]
    _, blocks = group_message(cards, NOW)
    summary = block(blocks, "-summary")["text"]["text"]
    assert "6 pods in `prod` (3), `staging` (2), `dev` (1)" in summary


def test_group_without_pending_has_no_buttons() -> None:
    text, blocks = group_message(storm(5, status="succeeded"), NOW)
    assert not buttons(blocks)
    assert "✅ 5 succeeded" in text


def test_group_of_1000_within_limits() -> None:
    alert = make_alert(alertname="Z" * 5000)
    cards = storm(1000, alert=alert, target="t" * 5000, policy_name="p" * 128)
    cards += [make_card(id=2000 + i, params={"namespace": f"ns{i}"}) for i in range(50)]
    text, blocks = group_message(cards, NOW)
    assert_within_limits(blocks, text)
    assert "… and 1040 more" in all_text((text, blocks))
    assert "and 46 more namespaces" in block(blocks, "-summary")["text"]["text"]


def test_empty_group() -> None:
    text, blocks = group_message([], NOW)
    assert_within_limits(blocks, text)
    assert group_detail_messages([]) == []


def test_group_detail_lines_and_chunking() -> None:
    messages = group_detail_messages(storm(3))
    assert len(messages) == 1
    text, blocks = messages[0]
    body = blocks[1]["text"]["text"]
    assert body.splitlines()[0] == "⏳ *#1* `prod/api-1` — pending · `namespace=prod, pod=api-1`"
    assert text == "Proposals 1–3 of 3 (#1 … #3)"


def test_group_detail_of_1000_huge_cards() -> None:
    cards = storm(1000, target="<!channel>" * 1000, params={"x": HUGE}, status_reason=HUGE)
    messages = group_detail_messages(cards)
    assert len(messages) == 10
    lines = 0
    for text, blocks in messages:
        assert_within_limits(blocks, text)
        assert "<!channel>" not in all_text((text, blocks))
        lines += sum(b["text"]["text"].count(" *#") for b in blocks[1:])
    assert lines == 1000
    assert "#1000" in messages[-1][0]


# --- command replies -------------------------------------------------------------------


def test_help_message() -> None:
    text, blocks = help_message(
        [("help", "Show this help.\n\nMore words."), ("scan <host|cidr> [ports]", "Scan hosts.")]
    )
    body = blocks[1]["text"]["text"]
    assert "`/infraai help` — Show this help." in body
    assert "`/infraai scan &lt;host|cidr&gt; [ports]` — Scan hosts." in body
    assert "More words" not in body
    assert_within_limits(blocks, text)


def test_proposals_message() -> None:
    text, blocks = proposals_message(
        [make_view(1), make_view(2, status="failed", status_reason="boom", dry_run=True)]
    )
    assert_within_limits(blocks, text)
    body = blocks[1]["text"]["text"]
    assert "⏳ *#1* pending · `k8s.restart_pod` `prod/api-1`" in body
    assert "❌ *#2* failed" in body and "boom" in body and "🧪 dry run" in body
    assert blocks[0]["text"]["text"] == "*2 proposals*"
    assert proposals_message([])[0] == "No proposals."


def test_policies_message() -> None:
    spec = PolicySpec(
        name="restart-crashlooping-pod",
        matchers=('alertname="KubePodCrashLooping"',),
        action="k8s.restart_pod",
        params={"namespace": "{{ labels.namespace }}", "pod": "{{ labels.pod }}"},
        enabled=False,
        cooldown_seconds=600,
    )
    text, blocks = policies_message([spec])
    assert text.startswith("1 policy\n")
    body = blocks[1]["text"]["text"]
    assert "*restart-crashlooping-pod* → `k8s.restart_pod`" in body
    assert "⏸ disabled" in body and "cooldown 600s" in body
    assert '`alertname="KubePodCrashLooping"`' in body
    assert policies_message([])[0] == "No policies."


@pytest.mark.parametrize(
    ("state", "emoji"), [("ok", "✅"), ("not configured", "⚪"), ("failing", "❌"), ("?", "❔")]
)
def test_status_message(state: str, emoji: str) -> None:
    _, blocks = status_message([("prometheus", state, "http://p:9090")])
    assert blocks[1]["text"]["text"] == f"{emoji} *prometheus* — {state}: http://p:9090"


def test_error_message() -> None:
    text, blocks = error_message("unknown command <!channel>", usage="scan <host|cidr>")
    assert text == "⚠️ unknown command &lt;!channel&gt;\nUsage: `scan &lt;host|cidr&gt;`"
    assert blocks[0]["text"]["text"] == text


def test_jobs_message() -> None:
    rows = [
        {
            "proposal_id": 3,
            "action": "k8s.restart_pod",
            "target": "prod/api-1",
            "status": "failed",
            "attempt": 2,
            "duration": 1.25,
            "worker_name": "w1",
            "error": "HTTP 500",
            "started_at": NOW,
        },
        {
            "proposal_id": 4,
            "action": "k8s.scale",
            "target": "prod/web",
            "status": "running",
            "attempt": 1,
            "duration": None,
            "worker_name": None,
            "error": None,
            "started_at": None,
        },
    ]
    text, blocks = jobs_message(rows)
    assert text.startswith("2 jobs\n")
    body = blocks[1]["text"]["text"]
    assert "❌ *#3* `k8s.restart_pod` `prod/api-1` — failed · attempt 2 · 1.2 s · w1" in body
    assert "↳ HTTP 500" in body
    assert "🏃 *#4* `k8s.scale` `prod/web` — running · attempt 1 · — · — · —" in body
    assert jobs_message([])[0] == "No jobs yet."


def test_command_replies_within_limits_for_huge_inputs() -> None:
    huge_job = {
        "proposal_id": 1,
        "action": HUGE,
        "target": HUGE,
        "status": "failed",
        "attempt": 1,
        "duration": 3.0,
        "worker_name": HUGE,
        "error": HUGE,
        "started_at": HUGE,
    }
    spec = PolicySpec(
        name="p" * 128,
        description=HUGE,
        matchers=tuple(f'a{i}="{"v" * 500}"' for i in range(50)),
        action="policies.list",
    )
    messages = [
        help_message([(HUGE, HUGE)] * 1000),
        proposals_message([make_view(i, target=HUGE, status_reason=HUGE) for i in range(1000)]),
        policies_message([spec] * 1000),
        status_message([(HUGE, "failing", HUGE)] * 1000),
        error_message(HUGE, usage=HUGE),
        jobs_message([huge_job] * 1000),
    ]
    for text, blocks in messages:
        assert_within_limits(blocks, text)
    more = messages[1][1][-1]
    assert more["type"] == "context"
    assert more["elements"][0]["text"].startswith("… and ")
    assert more["elements"][0]["text"].endswith(" more proposals")
