"""The one text builder for Slack: escaping, composing, and cutting without breaking markup."""

from __future__ import annotations

import re

import pytest

from bot.slack import mrkdwn
from bot.slack.mrkdwn import Mrkdwn
from core.text import Person, words


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U0EVIL>", "&lt;@U0EVIL&gt;"),
        ("<http://evil|docs>", "&lt;http://evil|docs&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert mrkdwn.escape(raw) == escaped


@pytest.mark.parametrize("typed", ["<!channel>", "&lt;!here&gt;", "a &amp; b", "<@U0X> & >"])
def test_what_slack_sent_is_read_as_typed_and_escaped_again_on_the_way_out(typed: str) -> None:
    sent_by_slack = mrkdwn.escape(typed)
    assert mrkdwn.unescape(sent_by_slack) == typed
    assert mrkdwn.escape(mrkdwn.unescape(sent_by_slack)) == sent_by_slack


def test_compose_escapes_plain_strings_and_keeps_markup() -> None:
    built = mrkdwn.compose("by ", mrkdwn.mention("U0ALICE"), " on <!here>")
    assert built == "by <@U0ALICE> on &lt;!here&gt;"
    assert isinstance(built, Mrkdwn)
    # A Mrkdwn that went through an f-string is a str again: escaped, never trusted.
    assert mrkdwn.compose(f"{mrkdwn.mention('U0ALICE')}") == "&lt;@U0ALICE&gt;"


@pytest.mark.parametrize(
    ("slack_id", "shown"),
    [
        ("U0ALICE", "<@U0ALICE>"),
        ("W0GRID", "<@W0GRID>"),
        ("S0SRE", "<!subteam^S0SRE>"),
        ("console", "console"),
        ("<!channel>", "&lt;!channel&gt;"),
    ],
)
def test_mention(slack_id: str, shown: str) -> None:
    assert mrkdwn.mention(slack_id) == shown


def test_core_words_name_people_and_escape_the_rest() -> None:
    text = words("Policy `<!channel>` disabled by ", Person("U0ALICE"), ".")
    assert mrkdwn.said(text) == "Policy `&lt;!channel&gt;` disabled by <@U0ALICE>."
    assert mrkdwn.said("<@U0EVIL>") == "&lt;@U0EVIL&gt;"
    assert str(text) == "Policy `<!channel>` disabled by U0ALICE."


def test_a_code_block_cannot_be_closed_from_inside() -> None:
    block = mrkdwn.code_block("a ``` <!here>")
    assert block.count("```") == 2 and "&lt;!here&gt;" in block


@pytest.mark.parametrize("size", [12, 13, 50, 2900])  # ≥ the longest markup piece
def test_chunks_never_split_an_entity_or_markup(size: int) -> None:
    text = mrkdwn.compose(*(["x<&>y", mrkdwn.mention("U0ALICE")] * 800))
    pieces = mrkdwn.chunks(text, size=size, most=10_000)
    assert "".join(pieces) == text
    for piece in pieces:
        assert len(piece) <= size
        assert not re.search(r"&[a-z]*$", piece), piece
        assert piece.count("<") == piece.count(">"), piece


def test_too_long_text_is_cut_with_a_mark_and_every_section_fits() -> None:
    text = mrkdwn.escape("<" * 40_000)
    fallback, blocks = mrkdwn.message(text)
    assert len(fallback) <= mrkdwn.FALLBACK_TEXT and fallback.endswith("…")
    assert len(blocks) == mrkdwn.MAX_SECTIONS
    for block in blocks:
        shown = block["text"]["text"]
        assert len(shown) <= 3000 and not re.search(r"&[a-z]*$", shown.rstrip("…"))
    assert blocks[-1]["text"]["text"].endswith("…")


def test_an_empty_message_is_still_a_valid_section() -> None:
    assert mrkdwn.message(mrkdwn.escape("")) == (" ", mrkdwn.sections(Mrkdwn(" ")))
