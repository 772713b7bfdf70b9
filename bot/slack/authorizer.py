"""Who may approve, for Slack: user IDs directly, user groups through usergroups.users.list.

Only a user id (`U…`/`W…`) can approve, and only by matching a user-id approver or being a
member of a listed group (`S…`): a group id in a click's `user.id` matches nothing.

Group membership is cached briefly (a click must be answered fast, and membership changes
rarely); a failed lookup refuses — an approval is never granted on an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.approvals import is_group_id, is_user_id, listed_users

log = logging.getLogger(__name__)


class SlackAuthorizer:
    def __init__(self, client: AsyncWebClient, ttl_seconds: float = 60.0) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        cached = self._cache.get(group)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("cannot resolve user group %s: %s", group, exc)
            return frozenset()
        users = frozenset(response.get("users") or [])
        self._cache[group] = (time.monotonic(), users)
        return users

    async def may_approve(self, user: str, approvers: Sequence[str]) -> bool:
        """User ids are compared with user ids only: a payload whose `user.id` is a group's
        id (`S…`) is no one, even when that group is listed."""
        if not is_user_id(user):
            return False
        if user in listed_users(approvers):
            return True
        for approver in approvers:
            if is_group_id(approver) and user in await self.members(approver):
                return True
        return False
