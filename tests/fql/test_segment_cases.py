"""Segment's own FQL test cases, run against Trackway: a subscription written for
Segment must mean the same here.

The cases (tests/fql/cases/segment_subscriptions.json) are transcribed from the tests
of Segment's destination-subscriptions package, each naming its file and test. Segment
parses FQL into an AST of conditions (`{"type": "event-property", "name": "price",
"operator": ">=", "value": 100}`) and evaluates that; `meaning` below writes such an
AST as the Trackway expression with the same meaning, so that each case is checked as
"Trackway compiles this FQL to what Segment's AST means" or "matches the same events".
"""

import json
from pathlib import Path
from typing import Any

import pytest

from trackway import fql
from trackway.fql.lexer import as_text
from trackway.fql.parser import And, Call, Compare, Node, Not, Or

CASES_FILE = Path(__file__).parent / "cases" / "segment_subscriptions.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())["cases"]
APPLICABLE = [case for case in CASES if "not_applicable" not in case]

_FIELDS = {"event-type": ("type",), "event": ("event",), "name": ("name",), "userId": ("userId",)}
_OBJECTS = {"event-property": "properties", "event-trait": "traits", "event-context": "context"}


def meaning(condition: dict[str, Any]) -> Node:
    """The Trackway AST meaning what Segment's evaluator (validate.ts) does with the
    condition: `=` and `!=` compare with the text of the value (`String(expected)`),
    `number_equals` with the number, `is_true` with the boolean..."""
    if condition["type"] == "group":
        children = tuple(meaning(child) for child in condition["children"])
        if len(children) == 1:
            return children[0]
        return And(children) if condition["operator"] == "and" else Or(children)
    path = _FIELDS.get(condition["type"]) or (
        _OBJECTS[condition["type"]],
        *condition["name"].split("."),
    )
    operator, value = condition["operator"], condition.get("value")
    text = as_text(value) if value is not None else ""
    match operator:
        case "=" | "!=":
            return Compare(path, operator, text)
        case "number_equals" | "number_not_equals":
            return Compare(path, "=" if operator == "number_equals" else "!=", _number(value))
        case "<" | "<=" | ">" | ">=":
            return Compare(path, operator, _number(value))
        case "exists" | "not_exists":
            return Compare(path, "!=" if operator == "exists" else "=", None)
        case "is_true" | "is_false":
            return Compare(path, "=", operator == "is_true")
    function, pattern = {
        "contains": ("contains", text),
        "starts_with": ("match", text + "*"),
        "ends_with": ("match", "*" + text),
    }[operator.removeprefix("not_")]
    call = Call(function, path, pattern)  # type: ignore[arg-type]
    return Not(call) if operator.startswith("not_") else call


def _number(value: Any) -> int | float:
    number = float(value)
    return int(number) if number.is_integer() else number


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['kind']}: {case['source']['test']}"


@pytest.mark.parametrize("case", [c for c in APPLICABLE if c["kind"] == "parse"], ids=_case_id)
def test_parses_as_segment_does(case: dict[str, Any]) -> None:
    if "difference" in case:  # intended: the case says why and what Trackway does
        with pytest.raises(fql.FQLError) as refused:
            fql.compile(case["fql"])
        assert refused.value.message == case["trackway"]["error"]
    elif "error" in case["segment"]:
        with pytest.raises(fql.FQLError):
            fql.compile(case["fql"])
    else:
        assert fql.compile(case["fql"]).node == meaning(case["segment"])


@pytest.mark.parametrize("case", [c for c in APPLICABLE if c["kind"] == "generate"], ids=_case_id)
def test_what_segment_writes_means_its_ast(case: dict[str, Any]) -> None:
    compiled = fql.compile(case["fql"])
    assert compiled.node == meaning(case["segment"])
    assert fql.compile(str(compiled)).node == compiled.node


@pytest.mark.parametrize("case", [c for c in APPLICABLE if c["kind"] == "evaluate"], ids=_case_id)
def test_matches_what_segment_matches(case: dict[str, Any]) -> None:
    expression = fql.Expression(meaning(case["segment"]))
    assert expression.matches(case["event"]) is case["matches"]


def test_every_case_is_checked_or_says_why_not() -> None:
    assert len(CASES) == 238
    for case in CASES:
        assert case["source"]["file"] and case["source"]["test"]
        assert case["kind"] in ("parse", "generate", "evaluate")
        if "difference" in case:
            assert case["trackway"] and case["difference"]
    counts = {key: sum(key in case for case in CASES) for key in ("difference", "not_applicable")}
    assert counts == {"difference": 1, "not_applicable": 4}
