"""Words for people, with the people in them kept apart from the words.

Core never writes a chat platform's markup (a Slack mention `<@U…>` is Slack's to write).
A message that names a person is `Words`: a plain string (people shown by their id, which is
what the console prints and what comparisons see) that also keeps its parts, so the Slack
surface can show each `Person` as a mention and escape every other character. Keeping people
out of the characters is what lets outside text inside a message (a policy name, an error, a
worker's name) never become a mention or `<!channel>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Characters text can carry and PostgreSQL's text and jsonb refuse: NUL, and lone surrogates
# (a JSON escape such as \ud800 decodes to one; Python's str holds it, UTF-8 cannot).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """`value` with NUL and lone surrogates replaced by U+FFFD in every string, and in the
    keys and items of dicts and lists: what any database column can hold."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


@dataclass(frozen=True)
class Person:
    """Someone a message names: a Slack user id, or a name such as `console` or `auto`."""

    id: str


class Words(str):
    """Plain text that remembers which parts of it are people (see the module docstring).

    Anything built from it with `+` or an f-string is a plain `str` again: the people become
    text, which a surface escapes — the safe direction.
    """

    parts: tuple[str | Person, ...]

    def __new__(cls, parts: tuple[str | Person, ...]) -> Words:
        plain = "".join(part if isinstance(part, str) else part.id for part in parts)
        self = super().__new__(cls, plain)
        self.parts = parts
        return self


def words(*parts: str | Person) -> Words:
    return Words(tuple(parts))
