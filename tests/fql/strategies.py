"""Hypothesis strategies for events, shared by the FQL and mapping property tests."""

from typing import Any

from hypothesis import strategies as st

from trackway.fql.parser import FIELDS

# Names that events and expressions share, so that random paths often reach values.
NAMES = ["a", "b", "0", "1", "x y", "é"]
names = st.sampled_from(NAMES) | st.text(min_size=1, max_size=5)
numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | numbers | st.sampled_from(["", "true", "3"]) | st.text()
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=4),
    max_leaves=8,
)
events = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
