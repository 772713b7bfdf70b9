"""Block Kit builders: data in, `(fallback text, blocks)` out; no I/O, no Slack client.

Every builder keeps Slack's limits by construction (block count, text lengths, field counts,
button sizes), because Slack refuses a whole message with `invalid_blocks` when one part is
too long — and an alert storm or a 10 kB annotation must still produce a message people can
act on. Strings that come from alerts, params or people are escaped (`&`, `<`, `>`) through
`bot.slack.mrkdwn`, the one text builder every route to Slack uses, so a label value can never
become a `<!channel>` mention or a link.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.emoji import HEALTH_EMOJI, SEVERITY_EMOJI, STATUS_EMOJI
from bot.slack import mrkdwn
from core.cards import ProposalCard
from core.db.models import PROPOSAL_STATUSES
from core.policy.spec import PolicySpec
from core.proposals import ProposalView

Block = dict[str, Any]
Message = tuple[str, list[Block]]

# Slack's limits (TESTING.md "Slack limits" and the Block Kit reference).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_FALLBACK_TEXT = 4000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30

APPROVE_ACTION = "proposal_approve"
DENY_ACTION = "proposal_deny"
GROUP_APPROVE_ACTION = "group_approve"
GROUP_DENY_ACTION = "group_deny"
# The group buttons carry no ids: the handler finds the proposals by channel + message ts.
GROUP_BUTTON_VALUE = "group"

KEY_LABELS = ("namespace", "pod", "deployment", "instance", "job", "vm", "severity")
SHOWN_LABELS = 10
SHOWN_PARAMS = 12
SHOWN_GROUP_TARGETS = 10
DETAIL_LINES_PER_MESSAGE = 100

SOURCE_TITLE = {"chat": "Chat request", "command": "Command"}
RISK_TEXT = {"write": "⚠️ changes infrastructure", "read": "read-only"}
DRY_RUN_TEXT = "🧪 dry run: nothing will be changed"
ACTION_NOUN = {
    "k8s.restart_pod": ("pod", "pods"),
    "k8s.pod_logs": ("pod", "pods"),
    "k8s.rollout_restart": ("deployment", "deployments"),
    "k8s.scale": ("deployment", "deployments"),
    "vsphere.reset_vm": ("VM", "VMs"),
    "vsphere.reboot_guest": ("VM", "VMs"),
    "vsphere.power_on": ("VM", "VMs"),
    "vsphere.power_off": ("VM", "VMs"),
    "k8s.list_pods": ("namespace", "namespaces"),
    "k8s.events": ("namespace", "namespaces"),
}

# --- text ------------------------------------------------------------------------------


def _clip(text: object, limit: int) -> str:
    """Escaped `text`, at most `limit` characters once escaped (`…` marks a cut)."""
    raw = str(text)
    escaped = mrkdwn.escape(raw[: limit + 1])  # escaping never shortens, so the rest cannot fit
    if len(escaped) <= limit:
        return escaped
    head = escaped[: limit - 1]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]  # never half an entity
    return head + "…"


def _plain(text: object, limit: int) -> str:
    """Plain text (headers, buttons, dialogs): no escaping, one line, at most `limit`."""
    value = _one_line(str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _code(value: object, limit: int) -> str:
    """Inline code; a backtick in the value would end the span, so it becomes `ˋ`."""
    return "`" + _clip(_one_line(str(value)).replace("`", "ˋ"), limit) + "`"


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def approvers_text(approvers: Sequence[str], limit: int = 20) -> str:
    if not approvers:
        return "anyone in INFRAAI_APPROVERS"
    shown = ", ".join(mrkdwn.mention(a) for a in approvers[:limit])
    more = len(approvers) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _relative(when: datetime, now: datetime) -> str:
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    seconds = (aware - (now if now.tzinfo else now.replace(tzinfo=UTC))).total_seconds()
    span = abs(seconds)
    if span < 60:
        amount = f"{int(span)} s"
    elif span < 3600:
        amount = f"{int(span // 60)} min"
    elif span < 86400:
        amount = f"{span / 3600:.1f}".removesuffix(".0") + " h"
    else:
        amount = f"{span / 86400:.1f}".removesuffix(".0") + " d"
    return f"in {amount}" if seconds >= 0 else f"{amount} ago"


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


# --- blocks ----------------------------------------------------------------------------


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    # verbatim: no auto-linking of bare names or mentions in what we did not mark up.
    return {"type": "mrkdwn", "text": mrkdwn.cut(text, limit) or " ", "verbatim": True}


def _header(text: str, block_id: str) -> Block:
    plain = {"type": "plain_text", "text": _plain(text, MAX_HEADER_TEXT), "emoji": True}
    return {"type": "header", "block_id": block_id, "text": plain}


def _section(text: str, block_id: str, fields: Sequence[str] = ()) -> Block:
    block: Block = {"type": "section", "block_id": block_id}
    if text:
        block["text"] = _mrkdwn(text, MAX_SECTION_TEXT)
    if fields:
        block["fields"] = [_mrkdwn(f, MAX_FIELD_TEXT) for f in fields[:MAX_FIELDS]]
    if not text and not fields:
        block["text"] = _mrkdwn(" ", MAX_SECTION_TEXT)
    return block


def _context(texts: Sequence[str], block_id: str) -> Block:
    elements = [_mrkdwn(t, MAX_FIELD_TEXT) for t in texts[:MAX_CONTEXT_ELEMENTS]]
    return {"type": "context", "block_id": block_id, "elements": elements}


def _button(
    text: str, action_id: str, value: str, style: str, confirm: dict[str, Any] | None = None
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _plain(text, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id[:MAX_ACTION_ID],
        "value": value[:MAX_BUTTON_VALUE],
        "style": style,
    }
    if confirm:
        button["confirm"] = confirm
    return button


def _confirm(title: str, text: str, ok: str) -> dict[str, Any]:
    def plain(value: str, limit: int) -> dict[str, Any]:
        return {"type": "plain_text", "text": _plain(value, limit), "emoji": True}

    return {
        "title": plain(title, MAX_CONFIRM_TITLE),
        "text": {"type": "mrkdwn", "text": mrkdwn.cut(text, MAX_CONFIRM_TEXT), "verbatim": True},
        "confirm": plain(ok, MAX_CONFIRM_BUTTON),
        "deny": plain("Cancel", MAX_CONFIRM_BUTTON),
        "style": "primary",
    }


def _pack(lines: Iterable[str], limit: int = MAX_SECTION_TEXT) -> list[tuple[str, int]]:
    """Lines joined into chunks of at most `limit` characters, each with its line count."""
    chunks: list[tuple[str, int]] = []
    current, count = "", 0
    for line in lines:
        line = mrkdwn.cut(line, limit)
        if count and len(current) + 1 + len(line) > limit:
            chunks.append((current, count))
            current, count = line, 1
        else:
            current, count = (f"{current}\n{line}" if count else line), count + 1
    if count:
        chunks.append((current, count))
    return chunks


def _fallback(text: str) -> str:
    return mrkdwn.cut(text, MAX_FALLBACK_TEXT)


# --- one proposal ----------------------------------------------------------------------


def severity_emoji(card: ProposalCard) -> str:
    severity = card.alert.severity.lower() if card.alert else ""
    return SEVERITY_EMOJI.get(severity, "⚪")


def _title(card: ProposalCard) -> str:
    if card.alert is not None:
        return card.alert.alertname or "Alert"
    return SOURCE_TITLE.get(card.source, "Proposal")


def _decider(card: ProposalCard) -> str:
    if not card.decided_by or card.decided_by == "auto":
        return "auto-remediation" if card.decided_by == "auto" else "someone"
    return mrkdwn.mention(card.decided_by)


def status_badge(card: ProposalCard) -> str:
    """The status line shown under the title; empty while pending (buttons say it all)."""
    reason = _clip(_one_line(card.status_reason or ""), 300)
    failure = reason or _clip(_one_line(card.last_error or ""), 300)
    badges = {
        "pending": "",
        "approved": f"✅ Approved by {_decider(card)} · queued",
        "running": "🏃 Running" + (f" (attempt {card.attempts})" if card.attempts > 1 else ""),
        "succeeded": "✅ Succeeded",
        "failed": "❌ Failed" + (f": {failure}" if failure else ""),
        "denied": f"🚫 Denied by {_decider(card)}",
        "expired": "⌛ Expired",
        "superseded": f"🔕 Superseded: {reason or 'resolved before approval'}",
        "rate_limited": "🧯 Rate limited" + (f": {reason}" if reason else ""),
    }
    badge = badges.get(card.status, f"❔ {_clip(card.status, 40)}")
    if card.approval == "auto" and card.status != "pending":
        badge = f"{badge} · 🤖 auto-remediation"
    return badge


def _awaiting(card: ProposalCard, now: datetime) -> bool:
    """Pending and not yet past its expiry: the only state in which buttons make sense."""
    if not card.is_pending:
        return False
    if card.expires_at is None:
        return True
    expires = card.expires_at if card.expires_at.tzinfo else card.expires_at.replace(tzinfo=UTC)
    return expires > (now if now.tzinfo else now.replace(tzinfo=UTC))


def _label_fields(labels: dict[str, str]) -> tuple[list[str], int]:
    keys = [k for k in KEY_LABELS if k in labels]
    keys += sorted(k for k in labels if k not in KEY_LABELS and k != "alertname")
    fields = [f"*{_clip(k, 100)}*\n{_clip(_one_line(str(labels[k])), 300)}" for k in keys]
    return fields[:SHOWN_LABELS], max(0, len(fields) - SHOWN_LABELS)


def _params_lines(params: dict[str, Any]) -> str:
    """`key: value` lines in a code block, bounded in count and length."""
    lines = [
        _clip(_one_line(f"{k}: {_value_text(v)}").replace("`", "ˋ"), 150) for k, v in params.items()
    ]
    if not lines:
        return "_no parameters_"
    more = len(lines) - SHOWN_PARAMS
    shown = "\n".join(lines[:SHOWN_PARAMS])
    return f"```{shown}```" + (f"\n… and {more} more params" if more > 0 else "")


def _what_fired(card: ProposalCard, now: datetime, prefix: str) -> list[Block]:
    alert = card.alert
    if alert is None:
        return []
    fields, more = _label_fields(alert.labels)
    state = "firing" if alert.status == "firing" else _clip(alert.status, 40)
    if alert.starts_at is not None:
        state += f" since {mrkdwn.date(alert.starts_at)} ({_relative(alert.starts_at, now)})"
    blocks = [_section(f"*What fired* · {state}", f"{prefix}-labels", fields)]
    if more:
        blocks.append(_context([f"… and {_plural(more, 'more label')}"], f"{prefix}-more-labels"))
    parts: list[str] = []
    if alert.summary:
        parts.append(_clip(alert.summary, 1200))
    description = alert.annotations.get("description", "")
    if description and description != alert.summary:
        parts.append(_clip(description, 1000))
    links = [
        link
        for link in (
            mrkdwn.link(alert.runbook_url, "📖 Runbook"),
            mrkdwn.link(alert.generator_url, "📈 Prometheus graph"),
        )
        if link
    ]
    if links:
        parts.append(" · ".join(links))
    if parts:
        blocks.append(_section("\n".join(parts), f"{prefix}-summary"))
    return blocks


def _proposes(card: ProposalCard) -> Block:
    lines = [
        "*What InfraAI proposes*",
        f"*{_code(card.action, 100)}*"
        + (f" — {_clip(card.action_description, 400)}" if card.action_description else ""),
        _params_lines(card.params),
        f"*Target:* {_code(card.target, 300)}",
        f"*Risk:* {RISK_TEXT.get(card.risk, _clip(card.risk, 40))}",
    ]
    if card.dry_run:
        lines.append(DRY_RUN_TEXT)
    return _section("\n".join(lines), f"proposal-{card.id}-proposes")


def _meta_fields(card: ProposalCard, now: datetime) -> list[str]:
    fields: list[str] = []
    if card.is_pending:
        fields.append(f"*May approve*\n{mrkdwn.cut(approvers_text(card.approvers), 1500)}")
        if card.expires_at is not None:
            verb = "Expires" if _awaiting(card, now) else "Expired"
            when = f"{mrkdwn.date(card.expires_at)} ({_relative(card.expires_at, now)})"
            fields.append(f"*{verb}*\n{when}")
    elif card.decided_at is not None:
        fields.append(f"*Decided*\n{mrkdwn.date(card.decided_at)}")
    if card.policy_name:
        policy = _code(card.policy_name, 130)
        if card.policy_description:
            policy += f"\n{_clip(card.policy_description, 300)}"
        fields.append(f"*Policy*\n{policy}")
    if card.source != "alert" and card.requested_by:
        fields.append(f"*Requested by*\n{mrkdwn.mention(card.requested_by)}")
    return fields


def proposal_message(card: ProposalCard, now: datetime) -> Message:
    """One proposal: what fired, what InfraAI proposes, who may approve, and the buttons."""
    prefix = f"proposal-{card.id}"
    emoji, title = severity_emoji(card), _title(card)
    suffix = f" · #{card.id}"
    blocks: list[Block] = [
        _header(
            f"{emoji} {_plain(title, MAX_HEADER_TEXT - len(suffix) - 3)}{suffix}",
            f"{prefix}-header",
        )
    ]
    badge = status_badge(card)
    if badge:
        blocks.append(_section(f"*{badge}*", f"{prefix}-status"))
    blocks += _what_fired(card, now, prefix)
    blocks.append(_proposes(card))
    meta = _meta_fields(card, now)
    if meta:
        blocks.append(_section("", f"{prefix}-meta", meta))
    if _awaiting(card, now):
        confirm = None
        if card.risk == "write" and not card.dry_run:
            confirm = _confirm(
                "Approve this change?",
                f"Run {_code(card.action, 60)} on {_code(card.target, 150)}? "
                "This changes infrastructure.",
                "Approve",
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{prefix}-actions",
                "elements": [
                    _button("Approve", APPROVE_ACTION, str(card.id), "primary", confirm),
                    _button("Deny", DENY_ACTION, str(card.id), "danger"),
                ],
            }
        )
    notes: list[str] = []
    if card.is_pending and card.status_reason:
        notes.append(f"ℹ️ {_clip(_one_line(card.status_reason), 500)}")
    if card.last_result:
        notes.append(f"*Last result:* {_clip(_one_line(card.last_result), 800)}")
    # A failed badge already shows the reason (status_reason, else the last error).
    in_badge = card.status == "failed" and card.status_reason in (None, "", card.last_error)
    if card.last_error and not in_badge and card.last_error != card.status_reason:
        notes.append(f"*Last error:* {_clip(_one_line(card.last_error), 800)}")
    if card.attempts > 1:
        notes.append(f"{card.attempts} attempts")
    if notes:
        blocks.append(_context(notes, f"{prefix}-context"))
    state = badge or "awaiting approval"
    text = (
        f"{emoji} {_clip(title, 200)}: proposal #{card.id} — {_clip(card.action, 100)} "
        f"on {_clip(card.target, 300)} — {state}"
    )
    return _fallback(text), blocks


# --- alert storms ----------------------------------------------------------------------


def _noun(cards: Sequence[ProposalCard], count: int) -> str:
    """`12 pods` when every card runs one action on pods; `12 targets` otherwise."""
    actions = {c.action for c in cards}
    only = actions.pop() if len(actions) == 1 else ""
    singular, plural = ACTION_NOUN.get(only, ("target", "targets"))
    return _plural(count, singular, plural)


def _namespaces(cards: Sequence[ProposalCard], limit: int = 5) -> str:
    counts: Counter[str] = Counter()
    for card in cards:
        namespace = card.params.get("namespace") or (
            card.alert and card.alert.labels.get("namespace")
        )
        if namespace:
            counts[str(namespace)] += 1
    if not counts:
        return ""
    if len(counts) == 1:
        return f" in {_code(next(iter(counts)), 80)}"
    shown = ", ".join(f"{_code(ns, 80)} ({n})" for ns, n in counts.most_common(limit))
    more = len(counts) - limit
    return f" in {shown}" + (f" and {_plural(more, 'more namespace')}" if more > 0 else "")


def status_counts(statuses: Iterable[str]) -> str:
    """`⏳ 9 pending · ✅ 2 succeeded`, in lifecycle order."""
    counts = Counter(statuses)
    order = [s for s in PROPOSAL_STATUSES if s in counts] + sorted(
        s for s in counts if s not in PROPOSAL_STATUSES
    )
    return " · ".join(
        f"{STATUS_EMOJI.get(s, '❔')} {counts[s]} {_clip(s.replace('_', ' '), 40)}" for s in order
    )


def _most_severe(cards: Sequence[ProposalCard]) -> str:
    emojis = {severity_emoji(c) for c in cards}
    return next((e for e in ("🔴", "🟠", "🔵") if e in emojis), "⚪")


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def group_message(cards: Sequence[ProposalCard], now: datetime) -> Message:
    """An alert storm for one policy as one message, with approve-all / deny-all buttons."""
    if not cards:
        return "No proposals", [_section("No proposals.", "group-empty")]
    prefix = f"group-{cards[0].id}"
    total = len(cards)
    policies = _unique(c.policy_name or "" for c in cards)
    alertnames = _unique(_title(c) for c in cards)
    actions = _unique(c.action for c in cards)
    emoji = _most_severe(cards)
    what = alertnames[0] if len(alertnames) == 1 else _plural(len(alertnames), "alert")
    policy = (
        f"policy {_code(policies[0], 130)}"
        if len(policies) == 1 and policies[0]
        else _plural(len(policies), "policy", "policies")
    )
    subject = f"{_noun(cards, total)}{_namespaces(cards)}"
    summary = f"*{_plural(total, 'proposal')}* from {policy} — {subject} · {_clip(what, 200)}"
    risks = _unique(c.risk for c in cards)
    risk = " / ".join(RISK_TEXT.get(r, _clip(r, 40)) for r in risks)
    action_line = f"*Action:* {', '.join(_code(a, 80) for a in actions[:5])} — {risk}"
    dry = sum(c.dry_run for c in cards)
    if dry:
        action_line += "\n" + (
            DRY_RUN_TEXT if dry == total else f"🧪 {dry} of {total} are dry runs"
        )
    blocks: list[Block] = [
        _header(f"{emoji} {total} × {_plain(what, 120)}", f"{prefix}-header"),
        _section(f"{summary}\n{status_counts(c.status for c in cards)}", f"{prefix}-summary"),
        _section(action_line, f"{prefix}-action"),
    ]
    targets = [
        f"• {_code(c.target, 200)} — {STATUS_EMOJI.get(c.status, '❔')} "
        f"{_clip(c.status.replace('_', ' '), 40)} · #{c.id}"
        for c in cards[:SHOWN_GROUP_TARGETS]
    ]
    if total > SHOWN_GROUP_TARGETS:
        targets.append(f"… and {total - SHOWN_GROUP_TARGETS} more — details in the thread")
    blocks += [
        _section(chunk, f"{prefix}-targets-{i}") for i, (chunk, _) in enumerate(_pack(targets)[:3])
    ]
    awaiting = [c for c in cards if _awaiting(c, now)]
    if awaiting:
        approvers = _unique(a for c in awaiting for a in c.approvers)
        meta = [f"*May approve*\n{mrkdwn.cut(approvers_text(approvers), 1500)}"]
        expiries = [c.expires_at for c in awaiting if c.expires_at is not None]
        if expiries:
            first = min(expiries)
            meta.append(f"*First expires*\n{mrkdwn.date(first)} ({_relative(first, now)})")
        blocks.append(_section("", f"{prefix}-meta", meta))
        count = len(awaiting)
        confirm = _confirm(
            f"Approve {_plural(count, 'pending proposal')}?",
            f"Each runs {', '.join(_code(a, 60) for a in actions[:3])} — {risk}.",
            f"Approve {count}",
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"{prefix}-actions",
                "elements": [
                    _button(
                        f"Approve all {count}",
                        GROUP_APPROVE_ACTION,
                        GROUP_BUTTON_VALUE,
                        "primary",
                        confirm,
                    ),
                    _button(f"Deny all {count}", GROUP_DENY_ACTION, GROUP_BUTTON_VALUE, "danger"),
                ],
            }
        )
    plain_policy = (
        policies[0] if len(policies) == 1 and policies[0] else f"{len(policies)} policies"
    )
    text = (
        f"{emoji} {_plural(total, 'proposal')} from policy {_clip(plain_policy, 130)} — "
        f"{subject} · {_clip(what, 200)} ({status_counts(c.status for c in cards)})"
    )
    return _fallback(text), blocks


def _detail_line(card: ProposalCard) -> str:
    params = ", ".join(f"{k}={_value_text(v)}" for k, v in card.params.items())
    reason = f": {_clip(_one_line(card.status_reason), 120)}" if card.status_reason else ""
    return (
        f"{STATUS_EMOJI.get(card.status, '❔')} *#{card.id}* {_code(card.target, 120)} — "
        f"{_clip(card.status.replace('_', ' '), 40)}{reason} · {_code(params or '-', 150)}"
    )


def group_detail_messages(cards: Sequence[ProposalCard]) -> list[Message]:
    """One line per proposal for the group's thread, split into messages within the limits."""
    messages: list[Message] = []
    total = len(cards)
    for start in range(0, total, DETAIL_LINES_PER_MESSAGE):
        chunk = cards[start : start + DETAIL_LINES_PER_MESSAGE]
        first, last = start + 1, start + len(chunk)
        span = f"Proposals {first}–{last} of {total} (#{chunk[0].id} … #{chunk[-1].id})"
        prefix = f"detail-{chunk[0].id}"
        blocks = [_context([span], f"{prefix}-span")]
        blocks += [
            _section(text, f"{prefix}-{i}")
            for i, (text, _) in enumerate(_pack(_detail_line(c) for c in chunk))
        ][: MAX_BLOCKS - 1]
        messages.append((_fallback(span), blocks))
    return messages


# --- command replies -------------------------------------------------------------------


def _list_message(
    title: str, lines: Sequence[str], *, prefix: str, empty: str, noun: str
) -> Message:
    """A titled list packed into sections; what does not fit is counted, never dropped silently."""
    if not lines:
        return empty, [_section(f"*{title}*\n{empty}", f"{prefix}-title")]
    blocks: list[Block] = [_section(f"*{title}*", f"{prefix}-title")]
    chunks = _pack(lines)
    room = MAX_BLOCKS - 2
    blocks += [_section(c, f"{prefix}-{i}") for i, (c, _) in enumerate(chunks[:room])]
    if len(chunks) > room:
        shown = sum(n for _, n in chunks[:room])
        blocks.append(_context([f"… and {len(lines) - shown} more {noun}"], f"{prefix}-more"))
    return _fallback(f"{title}\n" + "\n".join(lines)), blocks


def help_message(commands: Sequence[tuple[str, str]]) -> Message:
    """Usage and a one-line description per command (the first line of its docstring)."""
    lines = []
    for usage, doc in commands:
        usage = usage if usage.startswith("/") else f"/infraai {usage}"
        first = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
        lines.append(f"{_code(usage, 200)}" + (f" — {_clip(first, 300)}" if first else ""))
    return _list_message(
        "InfraAI commands", lines, prefix="help", empty="No commands.", noun="commands"
    )


def proposals_message(views: Sequence[ProposalView]) -> Message:
    """`/infraai proposals`: one line per proposal, the reason (if any) beneath it."""
    lines = [
        f"{STATUS_EMOJI.get(v.status, '❔')} *#{v.id}* {_clip(v.status.replace('_', ' '), 40)} · "
        f"{_code(v.action, 80)} {_code(v.target, 200)}"
        f" · {_clip(v.policy_name or v.source, 130)} · {mrkdwn.date(v.created_at)}"
        + (" · 🧪 dry run" if v.dry_run else "")
        + (f"\n      {_clip(_one_line(v.status_reason), 300)}" if v.status_reason else "")
        for v in views
    ]
    return _list_message(
        _plural(len(views), "proposal"),
        lines,
        prefix="proposals",
        empty="No proposals.",
        noun="proposals",
    )


def policies_message(specs: Sequence[PolicySpec]) -> Message:
    """`/infraai policy list`: name → action, approval and guard rails, then the matchers."""
    lines = []
    for spec in specs:
        state = "enabled" if spec.enabled else "⏸ disabled"
        matchers = ", ".join(_code(m, 200) for m in spec.matchers[:5])
        if len(spec.matchers) > 5:
            matchers += f" and {len(spec.matchers) - 5} more"
        extras = [f"approval {spec.approval}", state, f"priority {spec.priority}"]
        if spec.dry_run:
            extras.append("🧪 dry run")
        if spec.cooldown_seconds:
            extras.append(f"cooldown {spec.cooldown_seconds}s")
        if spec.max_runs_per_hour:
            extras.append(f"≤ {spec.max_runs_per_hour}/h")
        lines.append(
            f"*{_clip(spec.name, 130)}* → {_code(spec.action, 80)} · {' · '.join(extras)}\n"
            f"      matches {matchers}"
            + (f"\n      {_clip(_one_line(spec.description), 300)}" if spec.description else "")
        )
    return _list_message(
        _plural(len(specs), "policy", "policies"),
        lines,
        prefix="policies",
        empty="No policies.",
        noun="policies",
    )


def status_message(items: Sequence[tuple[str, str, str]]) -> Message:
    """Health of each integration: ✅ ok, ⚪ not configured, ❌ failing."""
    lines = [
        f"{HEALTH_EMOJI.get(state, '❔')} *{_clip(name, 100)}* — {_clip(state, 40)}"
        + (f": {_clip(_one_line(detail), 500)}" if detail else "")
        for name, state, detail in items
    ]
    return _list_message(
        "InfraAI status", lines, prefix="status", empty="Nothing to report.", noun="items"
    )


def error_message(text: str, usage: str | None = None) -> Message:
    """A one-line refusal or failure, with the usage that would have worked."""
    body = f"⚠️ {_clip(text, 2000)}"
    if usage:
        body += f"\nUsage: {_code(usage, 800)}"
    return _fallback(body), [_section(body, "error")]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def jobs_message(rows: Sequence[dict[str, Any]]) -> Message:
    """Recent jobs: proposal, action, target, status, attempt, duration, worker, error."""
    lines = []
    for row in rows:
        status = str(row.get("status") or "")
        started = row.get("started_at")
        when = mrkdwn.date(started) if isinstance(started, datetime) else _clip(started or "—", 40)
        line = (
            f"{STATUS_EMOJI.get(status, '❔')} *#{_clip(row.get('proposal_id', '?'), 20)}* "
            f"{_code(row.get('action', ''), 80)} {_code(row.get('target', ''), 200)} — "
            f"{_clip(status or '?', 40)} · attempt {_clip(row.get('attempt', 1), 10)} · "
            f"{_duration(row.get('duration'))} · {_clip(row.get('worker_name') or '—', 80)} · "
            f"{when}"
        )
        if row.get("error"):
            line += f"\n      ↳ {_clip(_one_line(str(row['error'])), 400)}"
        lines.append(line)
    return _list_message(
        _plural(len(rows), "job"), lines, prefix="jobs", empty="No jobs yet.", noun="jobs"
    )
