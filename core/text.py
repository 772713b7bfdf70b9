"""Words for people, with the people in them kept apart from the words.

Core never writes a chat platform's markup (a Slack mention `<@U…>` is Slack's to write).
A message that names a person holds a `Person` part, and each surface shows people its own
way: a mention in Slack, the id at the console. Keeping people out of the string is also what
lets the Slack surface escape every character of the words, so text from outside inside a
message (a policy name, an error, a worker's name) can never become a mention or `<!channel>`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    """Someone a message names: a Slack user id, or a name such as `console` or `auto`."""

    id: str


@dataclass(frozen=True)
class Words:
    """Plain text and the people it names, in order."""

    parts: tuple[str | Person, ...]

    def __str__(self) -> str:
        return "".join(part if isinstance(part, str) else part.id for part in self.parts)


def words(*parts: str | Person) -> Words:
    return Words(tuple(parts))


Said = str | Words  # what a command or a decision says: plain text, or words naming people
