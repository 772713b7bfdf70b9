"""Hypothesis strategies for hostile but plausible input: any text a JSON body can carry
(NUL, lone surrogates, bidi controls), odd timestamps and numbers, and arbitrary JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

# Every code point, surrogates included (hypothesis leaves out category Cs by default).
ANY_CHAR = st.characters(exclude_categories=())
any_text = st.text(ANY_CHAR, max_size=40)
label_name = st.one_of(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True), any_text)
long_text = st.one_of(any_text, st.integers(200, 400).map(lambda n: "p" * n))

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 31, 23, 59, 59))
timestamps = st.one_of(
    st.builds(lambda moment, tz: moment.replace(tzinfo=tz).isoformat(), instants, offsets),
    st.builds(lambda moment: moment.replace(tzinfo=UTC).isoformat(), instants),
    st.just("0001-01-01T00:00:00Z"),
    any_text,
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**60),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=20,
)
