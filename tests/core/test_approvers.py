"""Who may approve: user ids match only user-id approvers; group ids count through members.

A click's `user.id` is whatever the payload says. A user-group id (`S…`) is an approver list
entry standing for its members, never a person: a payload naming `S0ONCALL` as the clicker
must not approve just because `S0ONCALL` is listed.
"""

from __future__ import annotations

import pytest

from core.approvals import ListAuthorizer, is_group_id, is_user_id

APPROVERS = ("U123", "S0ONCALL")


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        ("U123", True),  # listed user
        ("U0BOB", True),  # member of the listed group
        ("W0ENTERPRISE", True),  # enterprise user, member of the group
        ("S0ONCALL", False),  # the group's id is not a person
        ("U0MALLORY", False),
        ("u123", False),
        ("", False),
        ("U123 ", False),
    ],
)
async def test_list_authorizer_compares_user_ids_to_user_ids(user: str, allowed: bool) -> None:
    authorizer = ListAuthorizer({"S0ONCALL": {"U0BOB", "W0ENTERPRISE", "S0ONCALL"}})
    assert await authorizer.may_approve(user, APPROVERS) is allowed


async def test_a_group_listed_as_member_of_itself_still_is_not_a_person() -> None:
    authorizer = ListAuthorizer({"S0ONCALL": {"S0ONCALL"}})
    assert not await authorizer.may_approve("S0ONCALL", ("S0ONCALL",))


@pytest.mark.parametrize(
    ("value", "user", "group"),
    [
        ("U123", True, False),
        ("W0ENTERPRISE", True, False),
        ("S0ONCALL", False, True),
        ("B0BOT", False, False),
        ("U1", False, False),
        ("U123\n", False, False),
        ("U12_3", False, False),
        ("", False, False),
    ],
)
def test_id_kinds(value: str, user: bool, group: bool) -> None:
    assert is_user_id(value) is user
    assert is_group_id(value) is group
