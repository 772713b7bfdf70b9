"""Alertmanager matcher strings: `a="b"`, `a!="b"`, `a=~"re"`, `a!~"re"`.

Parsed the way Alertmanager parses them (pkg/labels), because operators copy matchers between
their Alertmanager routes and InfraAI policies and expect them to mean the same thing:
regexes are anchored at both ends, a missing label matches as the empty string, and quoted
values take the escapes `\\"`, `\\\\` and `\\n`.

Regexes are RE2, Alertmanager's (Go's) syntax and its guarantee: matching takes time linear
in the label's length, whatever the pattern. A backtracking engine on `(a+)+$` and a long
label held the process at 100 % CPU; RE2 refuses what it cannot do in linear time
(backreferences, lookaround), and `policy apply` reports that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import re2

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is our error message, not stderr noise


class MatcherError(ValueError):
    """A matcher string that Alertmanager would refuse too."""


class MatchType(StrEnum):
    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Longest operators first so "=~" is not read as "=" followed by "~…".
_OPERATOR = re.compile(r"\s*(=~|!~|!=|=)\s*")
# Characters that stand for themselves in a regex ('.' does not: it is any character).
_PREFIX = re.compile(r"([A-Za-z0-9_:/ -]+)\.[*+]")
_SUFFIX = re.compile(r"\.[*+]([A-Za-z0-9_:/ -]+)")
_LITERAL_ALTERNATION = re.compile(r"[A-Za-z0-9_:/ -]+(?:\|[A-Za-z0-9_:/ -]+)*")


@dataclass(frozen=True)
class Matcher:
    name: str
    type: MatchType
    value: str
    _regex: Any = field(default=None, compare=False, repr=False)  # re2._Regexp
    # Shortcuts past RE2 for the regexes policies mostly use, each exact: `a|b` matches
    # exactly its literals; `p.*` nothing that does not start with p, `.*s` nothing that does
    # not end with s. RE2's Python binding costs ~10 µs a call (encoding, offsets), and an
    # alert walks every policy of its alertname, so most calls were `team-07-.*` failing.
    _literals: frozenset[str] | None = field(default=None, init=False, compare=False, repr=False)
    _prefix: str = field(default="", init=False, compare=False, repr=False)
    _suffix: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type not in (MatchType.REGEX, MatchType.NOT_REGEX):
            return
        if _LITERAL_ALTERNATION.fullmatch(self.value):
            object.__setattr__(self, "_literals", frozenset(self.value.split("|")))
        elif match := _PREFIX.fullmatch(self.value):
            object.__setattr__(self, "_prefix", match.group(1))
        elif match := _SUFFIX.fullmatch(self.value):
            object.__setattr__(self, "_suffix", match.group(1))

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.type is MatchType.EQUAL:
            return actual == self.value
        if self.type is MatchType.NOT_EQUAL:
            return actual != self.value
        if self._literals is not None:
            found = actual in self._literals
        elif not actual.startswith(self._prefix) or not actual.endswith(self._suffix):
            found = False
        else:
            assert self._regex is not None
            found = self._regex.fullmatch(actual) is not None
        return found if self.type is MatchType.REGEX else not found

    def equality_values(self) -> tuple[str, ...] | None:
        """The exact label values this matcher accepts, if it accepts a finite literal set.

        `a="x"` accepts ("x",); `a=~"x|y"` accepts ("x", "y"). The engine indexes policies by
        these, so ten thousand policies cost about what ten do.
        """
        if self.type is MatchType.EQUAL:
            return (self.value,)
        if self.type is MatchType.REGEX and _LITERAL_ALTERNATION.fullmatch(self.value):
            return tuple(dict.fromkeys(self.value.split("|")))
        return None

    def literal_affix(self) -> tuple[str, str] | None:
        """("prefix", p) for `a=~"p.*"` / `a=~"p.+"`, ("suffix", s) for `a=~".*s"` / `a=~".+s"`.

        Such a matcher only accepts values starting (ending) with a literal, so the engine can
        bucket it by a few characters of that literal instead of testing it on every alert.
        """
        if self.type is not MatchType.REGEX:
            return None
        if match := _PREFIX.fullmatch(self.value):
            return "prefix", match.group(1)
        if match := _SUFFIX.fullmatch(self.value):
            return "suffix", match.group(1)
        return None

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.type.value}"{escaped}"'


def _unquote(raw: str, source: str) -> str:
    if not raw.startswith('"'):
        if any(c in raw for c in '"{}, '):
            raise MatcherError(f"{source!r}: unquoted value {raw!r} needs double quotes")
        return raw
    if len(raw) < 2 or not raw.endswith('"'):
        raise MatcherError(f"{source!r}: unterminated quoted value")
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            if i + 1 >= len(body):
                raise MatcherError(f"{source!r}: dangling backslash")
            nxt = body[i + 1]
            if nxt not in '"\\n':
                raise MatcherError(f"{source!r}: unknown escape \\{nxt}")
            out.append("\n" if nxt == "n" else nxt)
            i += 2
            continue
        if char == '"':
            raise MatcherError(f"{source!r}: unescaped double quote inside the value")
        out.append(char)
        i += 1
    return "".join(out)


def compile_re2(pattern: str, source: str) -> Any:
    """The RE2 program for `pattern`, or MatcherError saying why RE2 refuses it.

    fullmatch() anchors it; not wrapping it in ^(?:…)$ keeps leading flags such as (?i)
    legal, as they are in Alertmanager.
    """
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise MatcherError(
            f"{source!r}: bad regular expression (RE2, as Alertmanager): {reason}"
        ) from None


def parse_matcher(source: str) -> Matcher:
    """Parse one matcher; raise MatcherError naming what is wrong."""
    text = source.strip()
    name_match = _LABEL_NAME.match(text)
    if not name_match:
        raise MatcherError(f"{source!r}: expected a label name first")
    name = name_match.group(0)
    op_match = _OPERATOR.match(text, name_match.end())
    if not op_match:
        raise MatcherError(f"{source!r}: expected one of =, !=, =~, !~ after {name!r}")
    match_type = MatchType(op_match.group(1))
    value = _unquote(text[op_match.end() :].strip(), source)
    regex = None
    if match_type in (MatchType.REGEX, MatchType.NOT_REGEX):
        regex = compile_re2(value, source)
    return Matcher(name, match_type, value, regex)
