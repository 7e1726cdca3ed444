"""Property-based tests of FQL: printing round-trips, evaluation is total and consistent."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fql.strategies import events, names, numbers
from trackway import fql
from trackway.fql.evaluate import Expression, lookup
from trackway.fql.parser import (
    FIELDS,
    TEXT_FIELDS,
    And,
    Call,
    Compare,
    In,
    Node,
    Not,
    Or,
    Value,
    parse,
)

# (a text field alone compares with the text of a number: parsing `type = 1` gives
# `type = "1"`, so such nodes do not come out of the parser)
path = st.builds(
    lambda root, rest: (root, *rest), st.sampled_from(FIELDS), st.lists(names, max_size=3)
).filter(lambda p: len(p) > 1 or p[0] not in TEXT_FIELDS)
value: st.SearchStrategy[Value] = st.none() | st.booleans() | numbers | st.text(max_size=8)
numeric = numbers | st.integers().map(str) | st.floats(-1e6, 1e6).map(repr)

comparison = st.builds(Compare, path, st.sampled_from(["=", "!="]), value) | st.builds(
    Compare, path, st.sampled_from(["<", "<=", ">", ">="]), numeric
)
leaf = (
    comparison
    | st.builds(In, path, st.lists(value, min_size=1, max_size=4).map(tuple))
    | st.builds(Call, st.sampled_from(["contains", "match"]), path, st.text(max_size=6))
)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    operands = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.builds(Not, children) | st.builds(And, operands) | st.builds(Or, operands)


node = st.recursive(leaf, _extend, max_leaves=12)

# Enough examples to find the usual mistakes, few enough to keep the suite fast.
SETTINGS = settings(max_examples=75, deadline=None)


@settings(max_examples=200, deadline=None)
@given(node)
def test_printing_then_parsing_gives_the_same_ast(tree: Node) -> None:
    assert parse(str(tree)) == tree


@SETTINGS
@given(node, events)
def test_evaluation_never_fails_on_json_events(tree: Node, data: dict[str, Any]) -> None:
    assert Expression(tree).matches(data) in (True, False)


@SETTINGS
@given(node, events)
def test_operators_combine_as_boolean_logic(tree: Node, data: dict[str, Any]) -> None:
    result = Expression(tree).matches(data)
    if not isinstance(tree, Call):  # (a negated call needs a string: see below)
        assert Expression(Not(tree)).matches(data) is not result
    other = Compare(("type",), "=", "track")
    other_result = Expression(other).matches(data)
    assert Expression(And((tree, other))).matches(data) is (result and other_result)
    assert Expression(Or((tree, other))).matches(data) is (result or other_result)


@SETTINGS
@given(path, value, events)
def test_not_equal_is_the_negation_of_equal(where: tuple[str, ...], v: Value, data: Any) -> None:
    equal = Expression(Compare(where, "=", v)).matches(data)
    unequal = Expression(Compare(where, "!=", v)).matches(data)
    if isinstance(v, int | float) and not isinstance(v, bool):
        # Segment's number_not_equals: only a number can be unequal to a number
        found = lookup(data, where)
        is_number = isinstance(found, int | float) and not isinstance(found, bool)
        assert unequal is (is_number and not equal)
    else:
        assert unequal is not equal


@SETTINGS
@given(st.builds(Call, st.sampled_from(["contains", "match"]), path, st.text(max_size=6)), events)
def test_a_negated_call_matches_strings_the_call_does_not(call: Call, data: Any) -> None:
    is_text = isinstance(lookup(data, call.path), str)
    expected = is_text and not Expression(call).matches(data)
    assert Expression(Not(call)).matches(data) is expected


@SETTINGS
@given(path, st.lists(value, min_size=1, max_size=4), events)
def test_in_is_an_or_of_equals(where: tuple[str, ...], values: list[Value], data: Any) -> None:
    expected = any(Expression(Compare(where, "=", v)).matches(data) for v in values)
    assert Expression(In(where, tuple(values))).matches(data) is expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_compiles_or_raises_fql_error(text: str) -> None:
    try:
        fql.compile(text)
    except fql.FQLError as exc:
        assert 0 <= exc.position <= len(text)


TOKENS = ["type", "properties.a", "=", "!=", "<", '"x"', "5", "null", "true", "and", "or"]
TOKENS += ["!", "(", ")", "in", "[", "]", ",", "contains", "match"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=12))
def test_token_soup_compiles_to_a_stable_expression_or_fails_cleanly(words: list[str]) -> None:
    text = " ".join(words)
    try:
        expression = fql.compile(text)
    except fql.FQLError as exc:
        assert 0 <= exc.position <= len(text)
    else:
        assert fql.compile(str(expression)) == expression
