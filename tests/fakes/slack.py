"""A faithful, stateful fake of Slack for tests: Web API, file uploads, response_url, Socket Mode.

Why a fake server rather than mocks: InfraAI talks to Slack through slack_sdk and slack_bolt,
whose retry handlers, token handling, form/JSON encoding and Socket Mode client are exactly
what we want exercised. So the fake speaks Slack's wire protocol on 127.0.0.1 and the real
libraries are pointed at it (``AsyncWebClient(base_url=fake.api_url)``). It answers the way
Slack does (HTTP 200 with ``ok: false`` for logical errors, 429 + ``Retry-After`` when rate
limited), keeps the state tests assert on (messages as currently shown, after updates), and
lets tests inject faults (5xx, 429, outages) and push Socket Mode envelopes.

Two ways to run it:

* ``await fake.start()`` / ``await fake.stop()`` (or ``async with FakeSlack() as fake``) in
  the test's event loop: right for code under test that is itself async.
* ``fake.start_in_thread()`` / ``fake.stop_in_thread()`` (or ``with FakeSlack() as fake``):
  its own loop in a daemon thread, for synchronous callers in the test process (an RQ
  ``SimpleWorker`` using slack_sdk's blocking ``WebClient``) that would otherwise block the
  loop serving them. All helpers, including the async ``wait_for*`` ones, work in both modes.
"""

# The wait helpers take ``timeout=`` like asyncio.wait_for: tests read better with one
# keyword than with an ``async with asyncio.timeout()`` around every wait.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import mimetypes
import re
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.slack_signing import (
    API_APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    event_callback_payload,
    slash_command_payload,
)

__all__ = [
    "Ack",
    "Call",
    "Ephemeral",
    "FakeSlack",
    "Message",
    "ResponsePost",
    "UploadedFile",
]

T = TypeVar("T")

# Params that Slack accepts as JSON strings in form bodies; recorded decoded so tests can
# look into blocks regardless of how the client encoded them.
_JSON_FIELDS = frozenset({"blocks", "attachments", "files", "view", "metadata", "user_auth_blocks"})
# Slack's documented limits that InfraAI must respect (TESTING.md "Slack limits").
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_BUTTON_TEXT = 75
MAX_HEADER_TEXT = 150
MAX_MESSAGE_TEXT = 40_000
RESPONSE_URL_MAX_USES = 5

_ERROR_FOR_STATUS = {
    500: "internal_error",
    502: "fatal_error",
    503: "service_unavailable",
    504: "request_timeout",
}
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_TS_BASE_MICROS = 1_700_000_000 * 1_000_000


@dataclass(frozen=True)
class Call:
    """One Web API request as the fake saw it (faulted attempts included).

    ``params`` merges query string, form and JSON body; ``blocks``/``attachments``/``view``
    /``files`` sent as JSON strings are decoded. ``status`` and ``response`` are what the
    fake answered, so a test can tell a 429'd attempt from the retry that succeeded.
    """

    method: str
    params: dict[str, Any]
    time: float
    token: str | None
    status: int
    response: dict[str, Any]
    http_method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when Slack would have reported success (HTTP 200 and ``ok: true``)."""
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class Message:
    """A message as it currently shows in a channel (updates applied, deletes flagged).

    ``history`` holds the earlier versions (dicts with text/blocks/attachments), oldest
    first, so a test can assert the sequence "pending → approved → succeeded".
    """

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    metadata: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None
    reply_broadcast: bool = False
    deleted: bool = False
    reply_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def edited(self) -> bool:
        """True once chat.update (or a response_url replace) changed the message."""
        return bool(self.history)

    def to_api(self) -> dict[str, Any]:
        """The ``message`` object Slack returns from chat.postMessage / chat.update."""
        out: dict[str, Any] = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "ts": self.ts,
            "team": TEAM_ID,
        }
        if self.bot_id:
            out["bot_id"] = self.bot_id
            out["app_id"] = API_APP_ID
            out["bot_profile"] = {
                "id": self.bot_id,
                "app_id": API_APP_ID,
                "name": "infraai",
                "deleted": False,
                "team_id": TEAM_ID,
            }
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments is not None:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
            if self.thread_ts != self.ts:
                out["parent_user_id"] = self.user
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.files:
            out["files"] = copy.deepcopy(self.files)
            out["upload"] = True
        if self.history:
            out["edited"] = {"user": self.user, "ts": self.history[-1]["edited_ts"]}
        return out

    def button_values(self) -> dict[str, str]:
        """``action_id → value`` of every button in the blocks (what a click would send)."""
        found: dict[str, str] = {}
        for block in self.blocks or []:
            elements = list(block.get("elements") or [])
            if block.get("accessory"):
                elements.append(block["accessory"])
            for element in elements:
                if isinstance(element, dict) and element.get("type") == "button":
                    found[str(element.get("action_id"))] = str(element.get("value", ""))
        return found

    def all_text(self) -> str:
        """Text plus every text in blocks/attachments, for "does the message mention X"."""
        parts: list[str] = [self.text]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key in ("text", "title", "pretext", "fallback") and isinstance(value, str):
                        parts.append(value)
                    else:
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.blocks)
        walk(self.attachments)
        return "\n".join(parts)


@dataclass(frozen=True)
class Ephemeral:
    """A chat.postEphemeral (or an ephemeral ``respond()``): seen by ``user`` only."""

    channel: str
    user: str | None
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    message_ts: str
    time: float


@dataclass(frozen=True)
class ResponsePost:
    """A POST to a ``response_url`` (what Bolt's ``respond()`` sends)."""

    url: str
    body: dict[str, Any]
    time: float
    status: int


@dataclass
class UploadedFile:
    """A file going through the v2 upload path (getUploadURLExternal → POST → complete)."""

    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    title: str | None = None
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False
    message_ts: str | None = None

    @property
    def mimetype(self) -> str:
        """Sniffed like Slack does: magic bytes first, then the file name."""
        if self.content is not None and self.content.startswith(b"\x89PNG\r\n\x1a\n"):
            return "image/png"
        guessed, _ = mimetypes.guess_type(self.filename)
        return guessed or "application/octet-stream"

    def to_api(self) -> dict[str, Any]:
        """The file object completeUploadExternal returns."""
        name = self.filename
        size = len(self.content) if self.content is not None else self.length
        shares: dict[str, Any] = {}
        if self.message_ts is not None:
            shares = {
                "public": {
                    channel: [
                        {
                            "ts": self.message_ts,
                            "channel_name": channel.lower(),
                            "team_id": TEAM_ID,
                            "share_user_id": BOT_USER_ID,
                            **({"thread_ts": self.thread_ts} if self.thread_ts else {}),
                        }
                    ]
                    for channel in self.channels
                }
            }
        return {
            "id": self.id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": self.title or name,
            "mimetype": self.mimetype,
            "filetype": name.rsplit(".", 1)[-1].lower() if "." in name else "binary",
            "user": BOT_USER_ID,
            "size": size,
            "is_public": True,
            "url_private": f"https://files.slack.com/files-pri/{TEAM_ID}-{self.id}/{name}",
            "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{self.id}/{name}",
            "channels": list(self.channels),
            "shares": shares,
            **({"alt_txt": self.alt_txt} if self.alt_txt else {}),
        }


@dataclass(frozen=True)
class Ack:
    """A Socket Mode acknowledgement the client sent back (``payload`` if it had one)."""

    envelope_id: str
    payload: dict[str, Any] | None
    time: float


@dataclass
class _Fault:
    remaining: int
    status: int
    retry_after: int | None
    methods: frozenset[str] | None

    def applies(self, method: str) -> bool:
        return self.remaining > 0 and (self.methods is None or method in self.methods)


@dataclass
class _Outage:
    until: float
    status: int
    retry_after: int | None
    methods: frozenset[str] | None

    def applies(self, method: str, now: float) -> bool:
        return now < self.until and (self.methods is None or method in self.methods)


@dataclass
class _ResponseUrl:
    channel: str | None
    message_ts: str | None
    uses: int = 0


class _SlackError(Exception):
    """A logical Slack error: answered as HTTP 200 ``{"ok": false, "error": …}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class _RateLimited(Exception):
    """Slack's own per-channel posting limit was hit (``post_rate``): answered as 429."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


Handler = Callable[[dict[str, Any], str | None], Awaitable[dict[str, Any]]]
StubResponse = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def _truthy(value: Any) -> bool:
    """Slack's boolean params: JSON bools, or form strings "true"/"1"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


class FakeSlack:
    """Slack's Web API, upload URLs, response_urls and Socket Mode on 127.0.0.1.

    Tokens: ``bot_token``/``app_token`` (exact match) when given, else any ``xoxb-``/
    ``xoxp-`` token for Web API methods and any ``xapp-`` token for apps.connections.open.
    ``channels`` (id → name) turns on the allow-list: posting elsewhere answers
    ``channel_not_found``. ``users`` seeds users.info; ``usergroups`` (group id → user
    ids) seeds usergroups.users.list. ``post_rate`` (messages/second/channel, with
    ``post_burst`` allowed at once) makes chat.postMessage answer 429 beyond Slack's limit.
    """

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        app_token: str | None = None,
        team_id: str = TEAM_ID,
        team_name: str = "InfraAI Test",
        team_domain: str = TEAM_DOMAIN,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        bot_name: str = "infraai",
        app_id: str = API_APP_ID,
        channels: Mapping[str, str] | None = None,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        usergroups: Mapping[str, Iterable[str]] | None = None,
        post_rate: float | None = None,
        post_burst: int = 3,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.post_rate = post_rate
        self.post_burst = post_burst

        self.calls: list[Call] = []
        self.acks: dict[str, Ack] = {}
        self.socket_received: list[dict[str, Any]] = []
        self.socket_sent: list[dict[str, Any]] = []
        self.response_posts: list[ResponsePost] = []
        self.files: dict[str, UploadedFile] = {}

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._messages: list[Message] = []
        self._by_key: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[Ephemeral] = []
        self._channels: dict[str, dict[str, Any]] = {}
        self._strict_channels = channels is not None
        for channel_id, name in (channels or {}).items():
            self.add_channel(channel_id, name)
        self._users: dict[str, dict[str, Any]] = {}
        for user_id, profile in (users or {}).items():
            self.add_user(user_id, **profile)
        self._usergroups: dict[str, list[str]] = {
            group: list(members) for group, members in (usergroups or {}).items()
        }
        self._stubs: dict[str, StubResponse] = {}
        self._faults: list[_Fault] = []
        self._outage: _Outage | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._tickets: set[str] = set()
        self._ts_counter = itertools.count(1)
        self._id_counter = itertools.count(1)

        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

        self._handlers: dict[str, Handler] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "views.open": self._views_record,
            "views.publish": self._views_record,
            "views.update": self._views_record,
            "views.push": self._views_record,
            "apps.connections.open": self._apps_connections_open,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # ----------------------------------------------------------------------------------
    # lifecycle

    @property
    def port(self) -> int:
        """The TCP port (kept across stop()/start(), so a restart looks like an outage)."""
        if self._port is None:
            raise RuntimeError("FakeSlack is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base for ``AsyncWebClient(base_url=…)``; the trailing slash is required."""
        return f"{self.base_url}/api/"

    @property
    def socket_url(self) -> str:
        """The Socket Mode endpoint (apps.connections.open hands out this URL plus a ticket)."""
        return f"ws://127.0.0.1:{self.port}/socket"

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        return app

    async def start(self) -> None:
        """Serve on 127.0.0.1 (a random port the first time, the same port on restart)."""
        if self._runner is not None:
            return
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port or 0))
        self._port = int(sock.getsockname()[1])
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        """Close Socket Mode connections and stop serving (state and records are kept)."""
        runner, self._runner = self._runner, None
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server shutting down")
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start_in_thread(self) -> None:
        """Run the fake on a private event loop in a daemon thread (for blocking callers)."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="FakeSlack", daemon=True)
        self._thread.start()
        started.wait(5)
        asyncio.run_coroutine_threadsafe(self.start(), loop).result(5)

    def stop_in_thread(self) -> None:
        """Stop the threaded fake and its loop."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeSlack:
        self.start_in_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_in_thread()

    async def _on_fake_loop(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the loop serving the fake (needed when it runs in a thread)."""
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro

        async def wrapper() -> T:
            return await coro

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(wrapper(), loop))

    # ----------------------------------------------------------------------------------
    # seeding

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
    ) -> None:
        """Register a channel (and allow it, if the allow-list is on).

        ``is_member=False`` makes posting answer ``not_in_channel``; ``is_archived=True``
        makes it answer ``is_archived`` — both real failure modes of a misconfigured bot.
        """
        with self._lock:
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name.lstrip("#"),
                "is_private": is_private,
                "is_member": is_member,
                "is_archived": is_archived,
            }

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        real_name: str | None = None,
        *,
        is_bot: bool = False,
        is_admin: bool = False,
        deleted: bool = False,
        email: str | None = None,
        **extra: Any,
    ) -> None:
        """Seed a user for users.info (unknown but valid-looking IDs are synthesized)."""
        handle = name or user_id.lower()
        with self._lock:
            self._users[user_id] = {
                "name": handle,
                "real_name": real_name or handle.title(),
                "is_bot": is_bot,
                "is_admin": is_admin,
                "deleted": deleted,
                "email": email or f"{handle}@example.com",
                **extra,
            }

    def set_usergroup(self, group_id: str, user_ids: Iterable[str]) -> None:
        """Seed (or replace) the members of a user group (``S…``)."""
        with self._lock:
            self._usergroups[group_id] = list(user_ids)

    def stub(self, method: str, response: StubResponse) -> None:
        """Answer ``method`` with a fixed body, or ``response(params)``: covers methods the
        fake does not model without editing it. A stub also overrides a built-in method."""
        with self._lock:
            self._stubs[method] = response

    # ----------------------------------------------------------------------------------
    # fault injection

    def fail_next(
        self, n: int = 1, status: int = 500, *, methods: Iterable[str] | None = None
    ) -> None:
        """The next ``n`` matching requests answer HTTP ``status`` (Slack having a bad day).

        ``methods`` limits it to those Web API methods; the pseudo-methods ``"upload"``
        (the file upload POST) and ``"response_url"`` select those endpoints. Default: all.
        """
        with self._lock:
            self._faults.append(_Fault(n, status, None, _methods(methods)))

    def rate_limit_next(
        self, n: int = 1, retry_after: int = 1, *, methods: Iterable[str] | None = None
    ) -> None:
        """The next ``n`` matching requests answer 429, ``Retry-After: retry_after`` and
        ``{"ok": false, "error": "ratelimited"}`` — exactly Slack's rate-limit reply."""
        with self._lock:
            self._faults.append(_Fault(n, 429, retry_after, _methods(methods)))

    def outage(
        self,
        seconds: float,
        status: int = 503,
        *,
        retry_after: int | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Every matching request fails with ``status`` for the next ``seconds`` seconds.

        With ``status=429`` it is a long rate limit (``retry_after`` defaults to the rest of
        the window, rounded up). For connection-level failures, ``await stop()`` and later
        ``start()`` again: the port is kept.
        """
        with self._lock:
            self._outage = _Outage(
                time.monotonic() + seconds, status, retry_after, _methods(methods)
            )

    def clear_faults(self) -> None:
        """Cancel pending ``fail_next``/``rate_limit_next`` and any running outage."""
        with self._lock:
            self._faults.clear()
            self._outage = None

    def _take_fault(self, method: str) -> web.Response | None:
        """The injected failure for this request, if any (consumed as it is used)."""
        with self._lock:
            now = time.monotonic()
            status: int | None = None
            retry_after: int | None = None
            if self._outage is not None and self._outage.applies(method, now):
                status = self._outage.status
                retry_after = self._outage.retry_after
                if status == 429 and retry_after is None:
                    retry_after = max(1, math.ceil(self._outage.until - now))
            else:
                for fault in self._faults:
                    if fault.applies(method):
                        fault.remaining -= 1
                        status, retry_after = fault.status, fault.retry_after
                        break
                self._faults = [f for f in self._faults if f.remaining > 0]
        if status is None:
            return None
        if status == 429:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after if retry_after is not None else 1)},
            )
        error = _ERROR_FOR_STATUS.get(status, "fatal_error")
        return web.json_response({"ok": False, "error": error}, status=status)

    def _rate_limited(self, channel: str) -> int | None:
        """Token bucket per channel for chat.postMessage; returns Retry-After if exceeded."""
        if self.post_rate is None:
            return None
        now = time.monotonic()
        tokens, last = self._buckets.get(channel, (float(self.post_burst), now))
        tokens = min(float(self.post_burst), tokens + (now - last) * self.post_rate)
        if tokens < 1.0:
            self._buckets[channel] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.post_rate))
        self._buckets[channel] = (tokens - 1.0, now)
        return None

    # ----------------------------------------------------------------------------------
    # inspection

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[Call]:
        """Every recorded call of ``method`` in order (faulted attempts too, unless ok_only)."""
        with self._lock:
            return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    def messages(
        self,
        channel: str | None = None,
        *,
        thread_ts: str | None = None,
        include_deleted: bool = False,
    ) -> list[Message]:
        """Snapshots of posted messages as they currently look, in posting order.

        ``thread_ts`` selects one thread (the parent included, as conversations.replies
        does). Deleted messages are left out unless ``include_deleted``.
        """
        with self._lock:
            selected = [
                m
                for m in self._messages
                if (channel is None or m.channel == channel)
                and (include_deleted or not m.deleted)
                and (thread_ts is None or m.ts == thread_ts or m.thread_ts == thread_ts)
            ]
            return copy.deepcopy(selected)

    def message(self, channel: str, ts: str) -> Message | None:
        """One message by its coordinates (a snapshot), or None."""
        with self._lock:
            found = self._by_key.get((channel, ts))
            return copy.deepcopy(found) if found is not None else None

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages (chat.postEphemeral and ephemeral ``respond()``), in order."""
        with self._lock:
            return [
                e
                for e in self._ephemerals
                if (channel is None or e.channel == channel) and (user is None or e.user == user)
            ]

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        """What was posted to response_urls (all, or one URL's), in order."""
        with self._lock:
            return [r for r in self.response_posts if url is None or r.url == url]

    def uploaded_files(self, channel: str | None = None) -> list[UploadedFile]:
        """Files whose upload completed (optionally: shared to ``channel``)."""
        with self._lock:
            return [
                copy.deepcopy(f)
                for f in self.files.values()
                if f.completed and (channel is None or channel in f.channels)
            ]

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode clients are connected right now."""
        with self._lock:
            return sum(1 for ws in self._sockets if not ws.closed)

    def reset(self) -> None:
        """Forget recorded calls and state (seeded channels, users and groups stay)."""
        with self._lock:
            self.calls.clear()
            self.acks.clear()
            self.socket_received.clear()
            self.socket_sent.clear()
            self.response_posts.clear()
            self.files.clear()
            self._messages.clear()
            self._by_key.clear()
            self._ephemerals.clear()
            self._buckets.clear()
        self._notify()

    # ----------------------------------------------------------------------------------
    # waiting

    def _notify(self) -> None:
        """Wake every ``wait_for`` (any loop, any thread) to re-check its predicate."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
            self._cond.notify_all()
        for loop, fut in waiters:
            if loop.is_closed():
                continue

            def resolve(f: asyncio.Future[None] = fut) -> None:
                if not f.done():
                    f.set_result(None)

            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(resolve)

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Wait until ``predicate()`` is truthy and return its value; no fixed sleeps.

        The predicate is re-evaluated whenever the fake's state changes (a call, a message,
        an ack, a socket connection). On timeout raises ``TimeoutError`` naming the last
        calls, which is usually what explains a hanging test.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiters.append((loop, fut))
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s; {self._summary()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, remaining)

    def wait_for_sync(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Blocking ``wait_for`` for synchronous tests (use with ``start_in_thread``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s; {self._summary()}")
                self._cond.wait(remaining)

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
        *,
        ok_only: bool = True,
    ) -> Call:
        """The first (successful, by default) call of ``method`` matching ``predicate``."""

        def find() -> Call | None:
            for c in self.calls_to(method, ok_only=ok_only):
                if predicate is None or predicate(c):
                    return c
            return None

        return await self.wait_for(find, timeout)

    async def wait_for_message(
        self,
        channel: str | None = None,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 5.0,
    ) -> Message:
        """The first current message in ``channel`` matching ``predicate``."""

        def find() -> Message | None:
            for m in self.messages(channel):
                if predicate is None or predicate(m):
                    return m
            return None

        return await self.wait_for(find, timeout)

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """The Socket Mode ack for ``envelope_id`` (Bolt sends none if no listener ack'ed)."""
        return await self.wait_for(lambda: self.acks.get(envelope_id), timeout)

    async def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> None:
        """Until at least ``count`` Socket Mode clients are connected."""
        await self.wait_for(lambda: self.socket_connections >= count, timeout)

    def _summary(self) -> str:
        with self._lock:
            last = [
                f"{c.method}→{c.status}{'' if c.ok else ' ' + str(c.response.get('error'))}"
                for c in self.calls[-8:]
            ]
            return f"{len(self.calls)} calls (last: {', '.join(last) or 'none'}), " + (
                f"{len(self._messages)} messages, {len(self.acks)} acks, "
                f"{self.socket_connections} sockets"
            )

    # ----------------------------------------------------------------------------------
    # HTTP plumbing

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        """Merge query string, form (urlencoded or multipart) and JSON body, like Slack."""
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            content_type = request.content_type
            if content_type == "application/json":
                raw = await request.read()
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        raise _SlackError("invalid_json") from exc
                    if not isinstance(body, dict):
                        raise _SlackError("invalid_json")
                    params.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        params[key] = value.file.read()
                    else:
                        params[key] = value
            else:
                raw = await request.read()
                if raw:
                    params.update(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
        for key in _JSON_FIELDS & params.keys():
            value = params[key]
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
        self._notify()

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        now = time.time()
        headers = dict(request.headers)
        try:
            params = await self._read_params(request)
        except _SlackError as exc:
            body = {"ok": False, "error": exc.error}
            self._record(Call(method, {}, now, None, 200, body, request.method, headers))
            return web.json_response(body)

        token = _token_from(request, params)
        params.pop("token", None)

        fault = self._take_fault(method)
        if fault is not None:
            body = json.loads(fault.text or "{}")
            self._record(
                Call(method, params, now, token, fault.status, body, request.method, headers)
            )
            return fault

        status = 200
        extra_headers: dict[str, str] = {}
        try:
            body = await self._dispatch(method, params, token)
        except _SlackError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        except _RateLimited as exc:
            status = 429
            body = {"ok": False, "error": "ratelimited"}
            extra_headers["Retry-After"] = str(exc.retry_after)
        self._record(Call(method, params, now, token, status, body, request.method, headers))
        return web.json_response(body, status=status, headers=extra_headers)

    async def _dispatch(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        with self._lock:
            stub = self._stubs.get(method)
        handler = self._handlers.get(method)
        if stub is None and handler is None:
            raise _SlackError("unknown_method", req_method=method)
        if method != "api.test":
            self._check_token(method, token)
        if stub is not None:
            return dict(stub(params) if callable(stub) else stub)
        assert handler is not None
        return await handler(params, token)

    def _check_token(self, method: str, token: str | None) -> None:
        """Slack's token rules: missing → not_authed, wrong → invalid_auth, wrong kind
        (an app-level token for chat.postMessage, or a bot token for apps.connections.open)
        → not_allowed_token_type."""
        if not token:
            raise _SlackError("not_authed")
        wants_app_token = method == "apps.connections.open"
        is_app_token = token.startswith("xapp-")
        if not is_app_token and not token.startswith(("xoxb-", "xoxp-")):
            raise _SlackError("invalid_auth")
        if wants_app_token != is_app_token:
            raise _SlackError("not_allowed_token_type")
        expected = self.app_token if is_app_token else self.bot_token
        if expected is not None and token != expected:
            raise _SlackError("invalid_auth")

    # ----------------------------------------------------------------------------------
    # helpers for method handlers

    def _next_ts(self) -> str:
        micros = _TS_BASE_MICROS + next(self._ts_counter) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}0FAKE{next(self._id_counter):05d}"

    def _resolve_channel(self, raw: Any, *, for_post: bool = False) -> str:
        """Channel ID for a channel param: IDs, ``#name``/``name`` and user IDs (→ DM)."""
        channel = _str_or_none(raw)
        if channel is None:
            raise _SlackError("channel_not_found")
        with self._lock:
            if for_post and _USER_ID.match(channel):
                dm = "D" + channel[1:]
                self._channels.setdefault(
                    dm,
                    {"id": dm, "name": dm, "is_private": True, "is_member": True, "is_im": True},
                )
                return dm
            info: dict[str, Any] | None
            if channel in self._channels:
                info = self._channels[channel]
            else:
                name = channel.lstrip("#")
                info = next((c for c in self._channels.values() if c["name"] == name), None)
                if info is None:
                    if self._strict_channels:
                        raise _SlackError("channel_not_found")
                    if _CHANNEL_ID.match(channel):
                        return channel
                    # Open world: a name Slack would resolve; give it a stable ID.
                    new_id = "C" + uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:8].upper()
                    info = {"id": new_id, "name": name, "is_private": False}
                    info.update(is_member=True, is_archived=False)
                    self._channels[new_id] = info
            if for_post and info.get("is_archived"):
                raise _SlackError("is_archived")
            if for_post and not info.get("is_member", True):
                raise _SlackError("not_in_channel")
            return str(info["id"])

    def _store(self, message: Message) -> None:
        with self._lock:
            self._messages.append(message)
            self._by_key[(message.channel, message.ts)] = message
            if message.thread_ts and message.thread_ts != message.ts:
                parent = self._by_key.get((message.channel, message.thread_ts))
                if parent is not None:
                    parent.reply_count += 1
        self._notify()

    def _find_message(self, channel: str, ts: Any) -> Message:
        with self._lock:
            found = self._by_key.get((channel, str(ts)))
        if found is None or found.deleted:
            raise _SlackError("message_not_found")
        return found

    def _content(self, params: dict[str, Any], *, required: bool) -> dict[str, Any]:
        """Validate text/blocks/attachments as chat.postMessage does."""
        text = params.get("text")
        blocks = params.get("blocks")
        attachments = params.get("attachments")
        if isinstance(blocks, str):
            if blocks.strip():
                raise _SlackError("invalid_blocks_format")
            blocks = None
        if isinstance(attachments, str):
            if attachments.strip():
                raise _SlackError("invalid_attachments")
            attachments = None
        if blocks is not None:
            _validate_blocks(blocks)
        if required and not text and not blocks and not attachments:
            raise _SlackError("no_text")
        if text is not None and len(str(text)) > MAX_MESSAGE_TEXT:
            raise _SlackError("msg_too_long")
        return {"text": text, "blocks": blocks, "attachments": attachments}

    # ----------------------------------------------------------------------------------
    # Web API methods

    async def _api_test(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        if "error" in params:
            raise _SlackError(str(params["error"]), args=params)
        return {"ok": True, "args": params}

    async def _auth_test(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _chat_post_message(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"), for_post=True)
        content = self._content(params, required=True)
        with self._lock:
            retry_after = self._rate_limited(channel)
        if retry_after is not None:
            raise _RateLimited(retry_after)
        thread_ts = _str_or_none(params.get("thread_ts"))
        metadata = params.get("metadata")
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            text=str(content["text"] or ""),
            blocks=content["blocks"],
            attachments=content["attachments"],
            thread_ts=thread_ts,
            user=self.bot_user_id,
            bot_id=self.bot_id,
            metadata=metadata if isinstance(metadata, dict) else None,
            reply_broadcast=_truthy(params.get("reply_broadcast", False)),
            params=copy.deepcopy(params),
        )
        self._store(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_api()}

    async def _chat_update(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        message = self._find_message(channel, params.get("ts"))
        content = self._content(params, required=False)
        if content["text"] is None and content["blocks"] is None and content["attachments"] is None:
            raise _SlackError("no_text")
        self._apply_update(message, content, params)
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(),
        }

    def _apply_update(
        self, message: Message, content: dict[str, Any], params: dict[str, Any]
    ) -> None:
        """Slack keeps fields the update leaves out (send ``blocks: []`` to drop blocks)."""
        with self._lock:
            message.history.append(
                {
                    "text": message.text,
                    "blocks": copy.deepcopy(message.blocks),
                    "attachments": copy.deepcopy(message.attachments),
                    "edited_ts": f"{time.time():.6f}",
                }
            )
            if content["text"] is not None:
                message.text = str(content["text"])
            if content["blocks"] is not None:
                message.blocks = content["blocks"] or None
            if content["attachments"] is not None:
                message.attachments = content["attachments"] or None
            message.params = copy.deepcopy(params)
        self._notify()

    async def _chat_delete(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        message = self._find_message(channel, params.get("ts"))
        with self._lock:
            message.deleted = True
        self._notify()
        return {"ok": True, "channel": channel, "ts": message.ts}

    async def _chat_post_ephemeral(
        self, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"), for_post=True)
        user = _str_or_none(params.get("user"))
        if user is None:
            raise _SlackError("user_not_found")
        content = self._content(params, required=True)
        ts = self._next_ts()
        with self._lock:
            self._ephemerals.append(
                Ephemeral(
                    channel=channel,
                    user=user,
                    text=str(content["text"] or ""),
                    blocks=content["blocks"],
                    thread_ts=_str_or_none(params.get("thread_ts")),
                    message_ts=ts,
                    time=time.time(),
                )
            )
        self._notify()
        return {"ok": True, "message_ts": ts}

    async def _chat_get_permalink(
        self, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        message = self._find_message(channel, params.get("message_ts"))
        link = (
            f"https://{self.team_domain}.slack.com/archives/{channel}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.thread_ts and message.thread_ts != message.ts:
            link += f"?thread_ts={message.thread_ts}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    async def _users_info(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        user_id = _str_or_none(params.get("user"))
        if user_id is None:
            raise _SlackError("user_not_found")
        with self._lock:
            seeded = dict(self._users.get(user_id, {}))
        if not seeded:
            if user_id == self.bot_user_id:
                seeded = {"name": self.bot_name, "real_name": self.bot_name, "is_bot": True}
            elif not _USER_ID.match(user_id):
                raise _SlackError("user_not_found")
        name = str(seeded.pop("name", user_id.lower()))
        real_name = str(seeded.pop("real_name", name.title()))
        email = seeded.pop("email", f"{name}@example.com")
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": "Europe/Amsterdam",
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "profile": {
                "real_name": real_name,
                "display_name": name,
                "real_name_normalized": real_name,
                "display_name_normalized": name,
                "email": email,
                "team": self.team_id,
            },
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }
        user.update(seeded)
        if user.get("is_bot"):
            user["profile"]["bot_id"] = self.bot_id
        return {"ok": True, "user": user}

    async def _usergroups_users_list(
        self, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        group = _str_or_none(params.get("usergroup"))
        with self._lock:
            members = self._usergroups.get(group or "")
        if members is None:
            raise _SlackError("no_such_subteam")
        return {"ok": True, "users": list(members)}

    async def _conversations_info(
        self, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        with self._lock:
            info = dict(self._channels.get(channel, {}))
        name = str(info.get("name", channel.lower()))
        is_im = channel.startswith("D")
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": name,
                "name_normalized": name,
                "is_channel": not is_im and not info.get("is_private", False),
                "is_group": bool(info.get("is_private", False)) and not is_im,
                "is_im": is_im,
                "is_private": bool(info.get("is_private", False)) or is_im,
                "is_archived": bool(info.get("is_archived", False)),
                "is_member": bool(info.get("is_member", True)),
                "is_general": False,
                "is_shared": False,
                "is_ext_shared": False,
                "is_org_shared": False,
                "context_team_id": self.team_id,
                "created": 1_600_000_000,
                "creator": "U0ADMIN",
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
            },
        }

    async def _views_record(self, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        view = params.get("view")
        if not isinstance(view, dict):
            raise _SlackError("invalid_arguments")
        if "trigger_id" in params and not params["trigger_id"]:
            raise _SlackError("invalid_trigger_id")
        view_id = _str_or_none(params.get("view_id")) or self._next_id("V")
        return {
            "ok": True,
            "view": {
                "id": view_id,
                "team_id": self.team_id,
                "app_id": self.app_id,
                "bot_id": self.bot_id,
                "hash": uuid.uuid4().hex[:16],
                "state": {"values": {}},
                **view,
            },
        }

    async def _apps_connections_open(
        self, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets.add(ticket)
        return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}&app_id={self.app_id}"}

    async def _files_get_upload_url(
        self, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        filename = _str_or_none(params.get("filename"))
        length = params.get("length")
        if filename is None or length in (None, ""):
            raise _SlackError("invalid_arguments")
        try:
            size = int(length)
        except (TypeError, ValueError) as exc:
            raise _SlackError("invalid_arguments") from exc
        file_id = self._next_id("F")
        with self._lock:
            self.files[file_id] = UploadedFile(
                id=file_id,
                filename=filename,
                length=size,
                alt_txt=_str_or_none(params.get("alt_txt") or params.get("alt_text")),
                snippet_type=_str_or_none(params.get("snippet_type")),
            )
        return {
            "ok": True,
            "upload_url": f"{self.base_url}/upload/v1/{file_id}",
            "file_id": file_id,
        }

    async def _files_complete_upload(
        self, params: dict[str, Any], token: str | None
    ) -> dict[str, Any]:
        entries = params.get("files")
        if not isinstance(entries, list) or not entries:
            raise _SlackError("invalid_arguments")
        channel_param = params.get("channel_id") or params.get("channels")
        channels = [
            self._resolve_channel(c.strip(), for_post=True)
            for c in str(channel_param or "").split(",")
            if c.strip()
        ]
        thread_ts = _str_or_none(params.get("thread_ts"))
        comment = _str_or_none(params.get("initial_comment"))
        done: list[UploadedFile] = []
        with self._lock:
            for entry in entries:
                file_id = str(entry.get("id", "")) if isinstance(entry, dict) else ""
                uploaded = self.files.get(file_id)
                if uploaded is None or uploaded.content is None:
                    raise _SlackError("file_not_found")
                uploaded.title = _str_or_none(entry.get("title")) or uploaded.filename
                uploaded.channels = channels
                uploaded.thread_ts = thread_ts
                uploaded.initial_comment = comment
                uploaded.completed = True
                done.append(uploaded)
        for channel in channels:
            share_ts = self._next_ts()
            with self._lock:
                for uploaded in done:
                    uploaded.message_ts = share_ts
            share = Message(
                channel=channel,
                ts=share_ts,
                text=comment or "",
                thread_ts=thread_ts,
                user=self.bot_user_id,
                bot_id=None,
                files=[f.to_api() for f in done],
                params=copy.deepcopy(params),
            )
            self._store(share)
        self._notify()
        return {"ok": True, "files": [f.to_api() for f in done]}

    # ----------------------------------------------------------------------------------
    # file upload URL and response_url endpoints

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault("upload")
        if fault is not None:
            return fault
        file_id = request.match_info["file_id"]
        with self._lock:
            uploaded = self.files.get(file_id)
        if uploaded is None:
            return web.Response(status=404, text="Not Found", content_type="text/plain")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            data = b""
            for value in form.values():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    break
                data = str(value).encode()
        else:
            data = await request.read()
        with self._lock:
            uploaded.content = data
        self._notify()
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    def new_response_url(self, channel: str | None = None, message_ts: str | None = None) -> str:
        """A ``response_url`` served by the fake, to put in commands and click payloads.

        With ``channel``/``message_ts`` (the message a click came from), a posted
        ``replace_original``/``delete_original`` changes that message and ``in_channel``
        posts a new one, as Slack does; otherwise the reply is an ephemeral. Like Slack's,
        a URL takes five posts, then answers 404 ``used_url``.
        """
        key = uuid.uuid4().hex
        with self._lock:
            self._response_urls[key] = _ResponseUrl(channel, message_ts)
        return f"{self.base_url}/response/{key}"

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        url = f"{self.base_url}/response/{request.match_info['key']}"
        fault = self._take_fault("response_url")
        if fault is not None:
            return fault
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        if not isinstance(body, dict):
            body = {"_raw": body}
        with self._lock:
            target = self._response_urls.get(request.match_info["key"])
            status = 200 if target is not None else 404
            error = "expired_url" if target is None else None
            if target is not None:
                target.uses += 1
                if target.uses > RESPONSE_URL_MAX_USES:
                    status, error = 404, "used_url"
            self.response_posts.append(ResponsePost(url, body, time.time(), status))
        self._notify()
        if error is not None:
            return web.json_response({"ok": False, "error": error}, status=status)
        assert target is not None
        try:
            self._apply_response(target, body)
        except _SlackError as exc:
            return web.json_response({"ok": False, "error": exc.error})
        return web.json_response({"ok": True})

    def _apply_response(self, target: _ResponseUrl, body: dict[str, Any]) -> None:
        channel = target.channel
        original = None
        if channel is not None and target.message_ts is not None:
            with self._lock:
                original = self._by_key.get((channel, target.message_ts))
        if _truthy(body.get("delete_original", False)):
            if original is not None:
                with self._lock:
                    original.deleted = True
                self._notify()
            return
        content = self._content(body, required=True)
        if _truthy(body.get("replace_original", False)) and original is not None:
            self._apply_update(original, content, body)
        elif body.get("response_type") == "in_channel" and channel is not None:
            self._store(
                Message(
                    channel=channel,
                    ts=self._next_ts(),
                    text=str(content["text"] or ""),
                    blocks=content["blocks"],
                    attachments=content["attachments"],
                    thread_ts=_str_or_none(body.get("thread_ts")),
                    user=self.bot_user_id,
                    bot_id=self.bot_id,
                    params=copy.deepcopy(body),
                )
            )
        else:
            with self._lock:
                self._ephemerals.append(
                    Ephemeral(
                        channel=channel or "",
                        user=None,
                        text=str(content["text"] or ""),
                        blocks=content["blocks"],
                        thread_ts=_str_or_none(body.get("thread_ts")),
                        message_ts=self._next_ts(),
                        time=time.time(),
                    )
                )
            self._notify()

    # ----------------------------------------------------------------------------------
    # Socket Mode

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            known = ticket in self._tickets
        if not known:
            return web.json_response({"ok": False, "error": "invalid_auth"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._sockets.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": self.socket_connections,
                "debug_info": {
                    "host": "applink-fake-1",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = {"_raw": msg.data}
                with self._lock:
                    self.socket_received.append(data)
                    envelope_id = data.get("envelope_id") if isinstance(data, dict) else None
                    if envelope_id:
                        self.acks[str(envelope_id)] = Ack(
                            str(envelope_id), data.get("payload"), time.time()
                        )
                self._notify()
        finally:
            with self._lock:
                if ws in self._sockets:
                    self._sockets.remove(ws)
            self._notify()
        return ws

    async def socket_send(
        self,
        envelope_type: str,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        envelope_id: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Push one envelope to the newest connected client; returns its ``envelope_id``.

        Waits (up to ``timeout``) for a client to connect, so a test can start its Socket
        Mode handler and send straight away.
        """
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": dict(payload),
            "type": envelope_type,
            "accepts_response_payload": accepts_response_payload,
        }
        if retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason or ""
        await self.wait_for_socket(1, timeout)
        await self._on_fake_loop(self._send_envelope(envelope))
        return str(envelope["envelope_id"])

    async def _send_envelope(self, envelope: dict[str, Any]) -> None:
        with self._lock:
            live = [ws for ws in self._sockets if not ws.closed]
            self.socket_sent.append(envelope)
        if not live:
            raise ConnectionError("no Socket Mode client connected")
        await live[-1].send_str(json.dumps(envelope))

    async def socket_send_event(
        self,
        event: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
        **callback_fields: Any,
    ) -> str:
        """Deliver an Events API event (wrapped in an event_callback) as Slack does.

        ``retry_attempt`` is 0 on a first delivery; Bolt turns it into the header
        ``x-slack-retry-num: "0"``, so retry-dropping code must test ``> 0``.
        """
        payload = event_callback_payload(
            event,
            team_id=callback_fields.pop("team_id", self.team_id),
            api_app_id=callback_fields.pop("api_app_id", self.app_id),
            bot_user_id=callback_fields.pop("bot_user_id", self.bot_user_id),
            **callback_fields,
        )
        return await self.socket_send(
            "events_api",
            payload,
            accepts_response_payload=False,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            timeout=timeout,
        )

    async def socket_send_command(self, form: Mapping[str, Any], *, timeout: float = 5.0) -> str:
        """Deliver a slash command; fields missing from ``form`` get realistic defaults
        (a response_url on this fake included). Slack lets the ack carry the reply."""
        defaults = slash_command_payload(
            text="", team_id=self.team_id, api_app_id=self.app_id, response_url=""
        )
        payload = {**defaults, **{k: str(v) for k, v in form.items()}}
        if not payload["response_url"]:
            payload["response_url"] = self.new_response_url(payload["channel_id"])
        return await self.socket_send(
            "slash_commands", payload, accepts_response_payload=True, timeout=timeout
        )

    async def socket_send_interactive(
        self, payload: Mapping[str, Any], *, timeout: float = 5.0
    ) -> str:
        """Deliver an interactivity payload (``block_actions_payload(...)``, a
        view_submission, …). Only view submissions and suggestions accept a response."""
        accepts = payload.get("type") in ("view_submission", "block_suggestion")
        return await self.socket_send(
            "interactive", payload, accepts_response_payload=accepts, timeout=timeout
        )

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message: the client must reconnect via
        apps.connections.open (Slack does this every few hours)."""
        message = {
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "applink-fake-1"},
        }

        async def send() -> None:
            with self._lock:
                live = [ws for ws in self._sockets if not ws.closed]
            for ws in live:
                await ws.send_str(json.dumps(message))

        await self._on_fake_loop(send())

    async def socket_close(self) -> None:
        """Drop every Socket Mode connection from the server side (a network blip)."""

        async def close() -> None:
            with self._lock:
                live = list(self._sockets)
            for ws in live:
                await ws.close(code=1011, message=b"fake close")

        await self._on_fake_loop(close())


def _methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    return None if methods is None else frozenset(methods)


def _token_from(request: web.Request, params: Mapping[str, Any]) -> str | None:
    """Bearer header first (what slack_sdk sends), then a ``token`` param (legacy)."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    token = params.get("token")
    return str(token) if token else None


def _text_len(obj: Any) -> int:
    if isinstance(obj, dict):
        return len(str(obj.get("text", "")))
    return len(str(obj or ""))


def _validate_blocks(blocks: Any) -> None:
    """Enforce the Block Kit limits Slack enforces (``invalid_blocks`` with reasons)."""
    errors: list[str] = []
    if not isinstance(blocks, list):
        raise _SlackError("invalid_blocks_format")
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    seen_block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}"
        if not isinstance(block, dict) or not block.get("type"):
            errors.append(f"missing required field: type {where}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > MAX_BLOCK_ID:
                errors.append(f"must be less than {MAX_BLOCK_ID + 1} characters {where}/block_id]")
            if str(block_id) in seen_block_ids:
                errors.append(f"duplicate block_id {where}/block_id]")
            seen_block_ids.add(str(block_id))
        kind = block["type"]
        if kind == "section":
            if "text" in block and _text_len(block["text"]) > MAX_SECTION_TEXT:
                errors.append(
                    f"must be less than {MAX_SECTION_TEXT + 1} characters {where}/text/text]"
                )
            if "text" not in block and "fields" not in block:
                errors.append(f"must provide either text or fields {where}]")
            for j, fld in enumerate(block.get("fields") or []):
                if _text_len(fld) > 2000:
                    errors.append(f"must be less than 2001 characters {where}/fields/{j}/text]")
            if len(block.get("fields") or []) > 10:
                errors.append(f"no more than 10 items allowed {where}/fields]")
        elif kind == "header" and _text_len(block.get("text")) > MAX_HEADER_TEXT:
            errors.append(f"must be less than {MAX_HEADER_TEXT + 1} characters {where}/text]")
        elif kind == "actions" and len(block.get("elements") or []) > 25:
            errors.append(f"no more than 25 items allowed {where}/elements]")
        elif kind == "context" and len(block.get("elements") or []) > 10:
            errors.append(f"no more than 10 items allowed {where}/elements]")
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        seen_action_ids: set[str] = set()
        for j, element in enumerate(elements):
            if not isinstance(element, dict):
                continue
            action_id = element.get("action_id")
            if action_id is not None:
                if len(str(action_id)) > MAX_ACTION_ID:
                    errors.append(
                        f"must be less than {MAX_ACTION_ID + 1} characters "
                        f"{where}/elements/{j}/action_id]"
                    )
                if str(action_id) in seen_action_ids:
                    errors.append(f"duplicate action_id {where}/elements/{j}/action_id]")
                seen_action_ids.add(str(action_id))
            if element.get("type") == "button":
                if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
                    errors.append(
                        f"must be less than {MAX_BUTTON_VALUE + 1} characters "
                        f"{where}/elements/{j}/value]"
                    )
                if _text_len(element.get("text")) > MAX_BUTTON_TEXT:
                    errors.append(
                        f"must be less than {MAX_BUTTON_TEXT + 1} characters "
                        f"{where}/elements/{j}/text]"
                    )
                if not element.get("text"):
                    errors.append(f"missing required field: text {where}/elements/{j}]")
    if errors:
        raise _SlackError(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
        )
