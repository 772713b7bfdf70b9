"""Alertmanager matcher strings: parsing, refusals, matching semantics, the index hints."""

from __future__ import annotations

import pytest

from core.policy.matchers import Matcher, MatcherError, MatchType, parse_matcher


@pytest.mark.parametrize(
    ("source", "name", "type_", "value"),
    [
        ('a="b"', "a", MatchType.EQUAL, "b"),
        ('a!="b"', "a", MatchType.NOT_EQUAL, "b"),
        ('a=~"re.*"', "a", MatchType.REGEX, "re.*"),
        ('a!~"re.*"', "a", MatchType.NOT_REGEX, "re.*"),
        ('alertname="KubePodCrashLooping"', "alertname", MatchType.EQUAL, "KubePodCrashLooping"),
        ('_private_1="x"', "_private_1", MatchType.EQUAL, "x"),
        # whitespace around the operator and the whole matcher
        ('a = "b"', "a", MatchType.EQUAL, "b"),
        ('  a  !=  "b"  ', "a", MatchType.NOT_EQUAL, "b"),
        ('a =~ "x|y"', "a", MatchType.REGEX, "x|y"),
        ('a\t!~\t"x"', "a", MatchType.NOT_REGEX, "x"),
        # unquoted values, as Alertmanager allows
        ("a=b", "a", MatchType.EQUAL, "b"),
        ("severity!=info", "severity", MatchType.NOT_EQUAL, "info"),
        ("a=~foo.*", "a", MatchType.REGEX, "foo.*"),
        ("a!~x|y", "a", MatchType.NOT_REGEX, "x|y"),
        ("a=", "a", MatchType.EQUAL, ""),
        # empty quoted value
        ('a=""', "a", MatchType.EQUAL, ""),
        ('a!=""', "a", MatchType.NOT_EQUAL, ""),
        # escapes in quoted values
        (r'a="say \"hi\""', "a", MatchType.EQUAL, 'say "hi"'),
        (r'a="back\\slash"', "a", MatchType.EQUAL, "back\\slash"),
        (r'a="two\nlines"', "a", MatchType.EQUAL, "two\nlines"),
        (r'a="\\n"', "a", MatchType.EQUAL, "\\n"),
        (r'a=~"\\d+"', "a", MatchType.REGEX, "\\d+"),
        # operators inside the value are just characters
        ('a="b=c!=d=~e"', "a", MatchType.EQUAL, "b=c!=d=~e"),
        ('a="x, y {z}"', "a", MatchType.EQUAL, "x, y {z}"),
    ],
)
def test_parses_valid_matchers(source: str, name: str, type_: MatchType, value: str) -> None:
    matcher = parse_matcher(source)
    assert (matcher.name, matcher.type, matcher.value) == (name, type_, value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "expected a label name"),
        ('="b"', "expected a label name"),
        ('1a="b"', "expected a label name"),
        ('"a"="b"', "expected a label name"),
        ("a", "expected one of =, !=, =~, !~"),
        ('a "b"', "expected one of =, !=, =~, !~"),
        ('a-b="c"', "expected one of =, !=, =~, !~"),
        ('a.b="c"', "expected one of =, !=, =~, !~"),
        ('a=="b"', "needs double quotes"),
        ('a~="b"', "expected one of =, !=, =~, !~"),
        ('a="b', "unterminated quoted value"),
        ('a="', "unterminated quoted value"),
        ('a="b" c', "unterminated quoted value"),
        ('a="b"c"', "unescaped double quote"),
        ('a="b\\', "unterminated quoted value"),
        ('a="b\\"', "dangling backslash"),
        ('a="\\t"', "unknown escape \\t"),
        ('a="\\d"', "unknown escape \\d"),
        ("a=b c", "needs double quotes"),
        ("a=b,c", "needs double quotes"),
        ('a=b"', "needs double quotes"),
        ('a=~"("', "bad regular expression"),
        ('a!~"[a-"', "bad regular expression"),
        ('a=~"*"', "bad regular expression"),
        ('a=~"foo)|(bar"', "bad regular expression"),
    ],
)
def test_refuses_invalid_matchers_with_a_reason(source: str, message: str) -> None:
    with pytest.raises(MatcherError) as caught:
        parse_matcher(source)
    text = str(caught.value)
    assert message in text
    assert repr(source) in text, "the message quotes the matcher it refuses"


def test_matcher_error_is_a_value_error() -> None:
    assert issubclass(MatcherError, ValueError)


@pytest.mark.parametrize(
    ("source", "labels", "expected"),
    [
        # equality
        ('a="b"', {"a": "b"}, True),
        ('a="b"', {"a": "B"}, False),
        ('a="b"', {"a": "bb"}, False),
        ('a="b"', {}, False),
        ('a!="b"', {"a": "b"}, False),
        ('a!="b"', {"a": "c"}, True),
        ('a!="b"', {}, True),
        # a missing label matches as the empty string
        ('a=""', {}, True),
        ('a=""', {"other": "x"}, True),
        ('a=""', {"a": "x"}, False),
        ('a!=""', {}, False),
        ('a!=""', {"a": "x"}, True),
        ('a=~".*"', {}, True),
        ('a=~".+"', {}, False),
        ('a!~".+"', {}, True),
        ('a=~"x|"', {}, True),
        # regexes are anchored at both ends
        ('a=~"foo"', {"a": "foo"}, True),
        ('a=~"foo"', {"a": "foobar"}, False),
        ('a=~"foo"', {"a": "barfoo"}, False),
        ('a=~"foo.*"', {"a": "foobar"}, True),
        ('a=~".*bar"', {"a": "foobar"}, True),
        ('a=~"x|y"', {"a": "x"}, True),
        ('a=~"x|y"', {"a": "y"}, True),
        ('a=~"x|y"', {"a": "xy"}, False),
        ('a=~"x|y"', {"a": "ax"}, False),
        ('a=~"critical|warning"', {"a": "warning"}, True),
        ('a=~"critical|warning"', {"a": "critical-ish"}, False),
        ('a=~"(?i)critical"', {"a": "CRITICAL"}, True),
        ('a=~"\\\\d+"', {"a": "123"}, True),
        ('a=~"\\\\d+"', {"a": "12a"}, False),
        # negative regex, also anchored
        ('a!~"foo"', {"a": "foo"}, False),
        ('a!~"foo"', {"a": "foobar"}, True),
        ('a!~"foo.*"', {"a": "foobar"}, False),
        ('a!~"foo"', {}, True),
        ('a!~""', {}, False),
        ('a!~""', {"a": "x"}, True),
        # only the named label counts
        ('a="b"', {"b": "b"}, False),
    ],
)
def test_matching_semantics(source: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(source).matches(labels) is expected


@pytest.mark.parametrize(
    ("source", "values"),
    [
        ('a="x"', ("x",)),
        ('a=""', ("",)),
        ('alertname="Kube Pod-Down:1/2"', ("Kube Pod-Down:1/2",)),
        ('a=~"x"', ("x",)),
        ('a=~"x|y"', ("x", "y")),
        ('a=~"critical|warning|info"', ("critical", "warning", "info")),
        ('a=~"x|x|y"', ("x", "y")),
        ('a=~"Disk_Full|node-down"', ("Disk_Full", "node-down")),
        # real regexes: the index cannot use them
        ('a=~"x.*"', None),
        ('a=~"x.y"', None),
        ('a=~"x+"', None),
        ('a=~"x?"', None),
        ('a=~"(x|y)"', None),
        ('a=~"[xy]"', None),
        ('a=~"x|"', None),
        ('a=~"|x"', None),
        ('a=~""', None),
        ('a=~"\\\\d"', None),
        ('a=~"(?i)x"', None),
        ('a=~"^x$"', None),
        # negative matchers accept an unbounded set
        ('a!="x"', None),
        ('a!~"x|y"', None),
    ],
)
def test_equality_values(source: str, values: tuple[str, ...] | None) -> None:
    assert parse_matcher(source).equality_values() == values


@pytest.mark.parametrize(
    "source",
    [
        'alertname="KubePodCrashLooping"',
        'alertname!="Watchdog"',
        'severity=~"critical|warning"',
        'job!~"node.*"',
        'a=""',
        r'a="say \"hi\""',
        r'a="back\\slash"',
        r'a="two\nlines"',
        r'a="\\n is not a newline"',
        r'a=~"\\d+\\.\\d+"',
        "a = b",
        'a="b=c"',
    ],
)
def test_str_round_trips_through_parse(source: str) -> None:
    matcher = parse_matcher(source)
    again = parse_matcher(str(matcher))
    assert again == matcher
    assert str(again) == str(matcher)
    labels = {"a": matcher.value}
    assert again.matches(labels) is matcher.matches(labels)


def test_str_is_the_canonical_quoted_form() -> None:
    assert str(parse_matcher("a = b")) == 'a="b"'
    assert str(parse_matcher(r'a!~"x\\.y"')) == r'a!~"x\\.y"'
    assert str(parse_matcher('a="x\ny"'.replace("\n", "\\n"))) == r'a="x\ny"'


def test_matchers_are_hashable_values() -> None:
    assert parse_matcher('a="b"') == parse_matcher('a = "b"')
    assert len({parse_matcher('a="b"'), parse_matcher("a=b")}) == 1
    assert isinstance(parse_matcher('a="b"'), Matcher)


# ------------------------------------------------------------------ RE2, as Alertmanager


def test_a_backtracking_regex_matches_in_linear_time() -> None:
    # Python's re backtracks exponentially here (the process hung at 100 % CPU); RE2 cannot.
    matcher = parse_matcher('instance=~"(a+)+$"')
    assert matcher.matches({"instance": "a" * 10_000}) is True
    assert matcher.matches({"instance": "a" * 10_000 + "b"}) is False


@pytest.mark.parametrize(
    "source",
    [r'a=~"(x)\\1"', 'a=~"(?=x)x"', 'a!~"(?<!x)y"', r'a=~"x{1001}"'],
    ids=["backreference", "lookahead", "lookbehind", "repeat over 1000"],
)
def test_regexes_re2_refuses_are_refused(source: str) -> None:
    with pytest.raises(MatcherError, match="RE2"):
        parse_matcher(source)


def test_re2_syntax_python_lacks_is_accepted() -> None:
    # RE2 (and Go) take POSIX classes inside brackets, and \pL for Unicode letters.
    assert parse_matcher('a=~"[[:digit:]]+"').matches({"a": "42"})
    assert parse_matcher(r"a=~\pL+").matches({"a": "Zürich"})


@pytest.mark.parametrize(
    "source",
    [
        'ns=~"team-07-.*"',
        'ns=~"team-07-.+"',
        'ns!~"team-07-.*"',
        'ns=~".*-prod"',
        'ns=~".+-prod"',
        'ns!~".*-prod"',
        'ns=~"prod|staging|team-07-x"',
        'ns!~"prod|staging"',
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        "",
        "team-07-",
        "team-07-api",
        "team-07-a\nb",
        "team-08-api",
        "xteam-07-api",
        "-prod",
        "api-prod",
        "api\n-prod",
        "api-prodx",
        "prod",
        "staging",
        "team-07-x",
        "prod|staging",
        "Prod",
    ],
)
def test_shortcuts_past_re2_agree_with_re2(source: str, value: str) -> None:
    """Literal alternations, `p.*` and `.*s` skip RE2 where the answer is certain; the
    answer is RE2's (Alertmanager's) whatever the value, newlines included."""
    matcher = parse_matcher(source)
    found = matcher._regex.fullmatch(value) is not None
    expected = found if matcher.type is MatchType.REGEX else not found
    assert matcher.matches({"ns": value}) is expected
    assert matcher.matches({}) is (
        (matcher._regex.fullmatch("") is not None) == (matcher.type is MatchType.REGEX)
    )
