"""manifest.yml against the code: every Web API method the bot calls is covered by a bot
scope, and the surfaces the code registers (the /infraai command, app_mention, buttons,
Socket Mode, one Request URL) are all switched on in the manifest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.slack.app import mount
from core.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
REQUEST_PATH = "/slack/events"

# Web API method → the bot scopes that allow it (an empty set: no scope needed).
METHOD_SCOPES: dict[str, set[str]] = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.getPermalink": set(),
    "usergroups.users.list": {"usergroups:read"},
    "users.info": {"users:read"},
    "conversations.info": {"channels:read", "groups:read"},
    "files.getUploadURLExternal": {"files:write"},
    "files.completeUploadExternal": {"files:write"},
    "files.upload.v2": {"files:write"},
    "reactions.add": {"reactions:write"},
}
# Scopes the manifest asks for ahead of the code that uses them, and why.
# (files:write is used since issue 9: Grafana panel pictures and graphs for `query`.)
PLANNED: dict[str, str] = {}

_SDK_CALL = re.compile(
    r"\.(auth|chat|usergroups|users|conversations|files|reactions)_([A-Za-z0-9_]+)\("
)
_NAMED_CALL = re.compile(
    r"[\"']((?:auth|chat|usergroups|users|conversations|files|reactions)\.[A-Za-z.]+)[\"']"
)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert isinstance(data, dict)
    return data


def methods_called() -> dict[str, set[str]]:
    """Web API methods named in bot/ (client.chat_postMessage(…), api_call("chat.update"),
    Bolt's say() = chat.postMessage), each with the files that call it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        source = path.read_text()
        names = {f"{family}.{rest.replace('_', '.')}" for family, rest in _SDK_CALL.findall(source)}
        names |= set(_NAMED_CALL.findall(source))
        if re.search(r"\bawait say\(", source):
            names.add("chat.postMessage")
        for name in names:
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def bot_scopes(manifest: dict[str, Any]) -> set[str]:
    return set(manifest["oauth_config"]["scopes"]["bot"])


def test_the_scan_finds_what_the_bot_is_known_to_call() -> None:
    called = methods_called()
    for method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
        assert method in called, method
    assert "usergroups.users.list" in called  # the group-aware authorizer


def test_every_method_the_code_calls_is_covered_by_a_scope(manifest: dict[str, Any]) -> None:
    scopes = bot_scopes(manifest)
    for method, files in methods_called().items():
        assert method in METHOD_SCOPES, f"{method} (in {sorted(files)}): add its scope here"
        needed = METHOD_SCOPES[method]
        assert not needed or needed & scopes, f"{method} needs one of {needed}; have {scopes}"


def test_the_scopes_the_surfaces_need(manifest: dict[str, Any]) -> None:
    scopes = bot_scopes(manifest)
    assert {"chat:write", "commands", "app_mentions:read", "usergroups:read"} <= scopes


def test_no_scope_is_asked_for_without_a_use(manifest: dict[str, Any]) -> None:
    used = {s for m in methods_called() for s in METHOD_SCOPES.get(m, set())}
    # the slash command, the mention event, and direct messages (message.im)
    used |= {"commands", "app_mentions:read", "im:history"}
    unused = bot_scopes(manifest) - used - set(PLANNED)
    assert not unused, f"scopes nothing uses (least privilege): {sorted(unused)}"


def test_socket_mode_interactivity_command_and_mention_event(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert "app_mention" in settings["event_subscriptions"]["bot_events"]
    [command] = [c for c in manifest["features"]["slash_commands"] if c["command"] == "/infraai"]
    assert command["should_escape"] is False
    assert manifest["features"]["bot_user"]["display_name"]


def test_one_request_url_for_events_commands_and_interactivity(
    manifest: dict[str, Any],
) -> None:
    settings = manifest["settings"]
    urls = {
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    }
    assert len(urls) == 1
    [url] = urls
    assert url.startswith("https://") and url.endswith(REQUEST_PATH)
    assert mount.__defaults__ == (REQUEST_PATH,)  # the path the HTTP app serves


def test_the_usage_hint_names_real_commands(manifest: dict[str, Any]) -> None:
    [command] = manifest["features"]["slash_commands"]
    hint = command["usage_hint"]
    named = {part.strip().split()[0] for part in hint.split("|")}
    assert named <= set(COMMANDS), named - set(COMMANDS)
    assert len(hint) <= 1000 and len(command["description"]) <= 2000


def test_slack_limits_on_the_app_identity(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert 1 <= len(info["name"]) <= 35
    assert len(info.get("description", "")) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])
    assert len(manifest["features"]["bot_user"]["display_name"]) <= 80
