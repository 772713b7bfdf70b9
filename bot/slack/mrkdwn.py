"""Text for Slack, built in one place: outside text escaped, InfraAI's own markup kept.

Slack treats `&`, `<` and `>` as control characters in every mrkdwn text and in a message's
fallback `text`: `<!channel>` notifies a whole channel, `<@U…>` a person, `<http://…|x>` is a
link whose label hides its address. Anything InfraAI did not write itself — alert labels,
job results, worker names, error messages, what people typed — reaches Slack escaped, on
every route: Block Kit messages, thread notices, command and mention replies, ephemerals.

`Mrkdwn` marks text that is already safe to send. Only the functions here make one
(`escape`, `compose`, `mention`, `said`, `code_block`, `link`, `date`), and `compose`
escapes every plain `str` it is given, so a forgotten escape fails safe: a value escaped
twice shows `&amp;lt;`, it never pings anyone.

Incoming text goes the other way: `unescape` turns what Slack sent back into what was typed,
for parsing only. Replies built from it are escaped again on the way out (escaping always
happens after any unescaping, at the last step before Slack).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from core.approvals import is_group_id, is_user_id
from core.text import Person, Words

SECTION_TEXT = 2900  # under Slack's 3,000 per section, with room for a cut mark
MAX_SECTIONS = 10
FALLBACK_TEXT = 3900  # Slack truncates a message's `text` at 4,000

_Text = TypeVar("_Text", bound=str)  # `cut` keeps a `Mrkdwn` a `Mrkdwn`


class Mrkdwn(str):
    """Text safe to send to Slack as mrkdwn: escaped outside text plus our own markup.

    Concatenating a `Mrkdwn` with anything gives a plain `str` again; use `compose`.
    """

    __slots__ = ()


def escape(text: object) -> Mrkdwn:
    """Slack's required escaping of `&`, `<`, `>` (so `<!channel>` stays text)."""
    return Mrkdwn(str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def unescape(text: str) -> str:
    """What a person typed, from what Slack sent (`&lt;` → `<`; `&amp;` last, so a typed
    `&lt;` stays `&lt;`). For parsing only: never send the result back unescaped."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def compose(*parts: str) -> Mrkdwn:
    """Join parts: `Mrkdwn` parts as they are, every other string escaped."""
    return Mrkdwn("".join(p if isinstance(p, Mrkdwn) else escape(p) for p in parts))


def mention(slack_id: str) -> Mrkdwn:
    """`<@U…>` for a user, `<!subteam^S…>` for a user group, escaped text otherwise."""
    if is_user_id(slack_id):
        return Mrkdwn(f"<@{slack_id}>")
    if is_group_id(slack_id):
        return Mrkdwn(f"<!subteam^{slack_id}>")
    return escape(slack_id)


def said(text: str) -> Mrkdwn:
    """What core says as mrkdwn: the people `Words` name become mentions, every other
    character is escaped."""
    if not isinstance(text, Words):
        return escape(text)
    return compose(*(mention(p.id) if isinstance(p, Person) else p for p in text.parts))


def code_block(text: str) -> Mrkdwn:
    """A preformatted block of outside text (a fence inside it would end the block early)."""
    return Mrkdwn("```" + escape(text.replace("```", "ˋˋˋ")) + "```")


def link(url: str | None, label: str) -> Mrkdwn | None:
    """A `<url|label>` link for http(s) URLs of sane length; anything else is not linked."""
    if not url or not url.startswith(("http://", "https://")) or len(url) > 1500:
        return None
    safe = escape(url.replace("|", "%7C").replace(" ", "%20"))
    return Mrkdwn(f"<{safe}|{escape(label.replace('|', '¦'))}>")


def date(when: datetime) -> Mrkdwn:
    """Slack's date formatting (shown in the reader's time zone) with a UTC fallback."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    fallback = aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Mrkdwn(f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>")


def _safe_end(text: str, end: int) -> int:
    """The last index ≤ `end` that splits `text` neither inside an entity nor inside `<…>`."""
    head = text[:end]
    start_of_markup = head.rfind("<")
    if start_of_markup > head.rfind(">"):
        end = start_of_markup
        head = text[:end]
    start_of_entity = head.rfind("&")
    if start_of_entity != -1 and ";" not in head[start_of_entity:]:
        end = start_of_entity
    return end


def cut(text: _Text, limit: int) -> _Text:
    """Shorten mrkdwn without leaving half an entity or half a `<link>` (`…` marks a cut)."""
    if len(text) <= limit:
        return text
    return type(text)(text[: _safe_end(text, limit - 1)] + "…")


def chunks(text: Mrkdwn, size: int = SECTION_TEXT, most: int = MAX_SECTIONS) -> list[Mrkdwn]:
    """`text` in pieces of at most `size`, never splitting an entity or our markup; what
    does not fit in `most` pieces is cut (marked `…`)."""
    pieces: list[Mrkdwn] = []
    rest = str(text)
    while rest and len(pieces) < most:
        if len(rest) <= size:
            pieces.append(Mrkdwn(rest))
            rest = ""
            break
        end = _safe_end(rest, size) or size  # a single 3 kB `<…>` of ours is cut anyway
        pieces.append(Mrkdwn(rest[:end]))
        rest = rest[end:]
    if rest and pieces:
        pieces[-1] = cut(Mrkdwn(pieces[-1] + "…"), size)
    return pieces


def sections(text: Mrkdwn) -> list[dict[str, Any]]:
    """Mrkdwn sections within Slack's 3,000-character section limit."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece, "verbatim": True}}
        for piece in chunks(text) or [Mrkdwn(" ")]
    ]


def message(text: Mrkdwn) -> tuple[str, list[dict[str, Any]]]:
    """`(fallback text, blocks)` for a plain reply or notice, both escaped."""
    return cut(text, FALLBACK_TEXT) or " ", sections(text)
