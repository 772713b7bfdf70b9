"""The emoji every surface uses for states, so Slack and the console speak alike."""

from __future__ import annotations

SEVERITY_EMOJI = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
STATUS_EMOJI = {
    "pending": "⏳",
    "approved": "👍",
    "running": "🏃",
    "succeeded": "✅",
    "failed": "❌",
    "denied": "🚫",
    "expired": "⌛",
    "superseded": "🔕",
    "rate_limited": "🧯",
    "queued": "⏳",
}
HEALTH_EMOJI = {"ok": "✅", "not configured": "⚪", "failing": "❌"}
