"""Segment's own mapping-kit test cases, run against Trackway's mappings: a mapping
written for Segment must build the same payload here.

The cases (tests/mapping/cases/segment_mapping_kit.json) are transcribed from the tests
of the mapping-kit in Segment's action-destinations (packages/core/src/mapping-kit),
each naming its file and test. Segment's `transform(mapping, payload)` maps a whole
value; here a mapping is the object of an action's fields, so each Segment mapping is
run as the mapping of one field, `{"value": <mapping>}`, and Segment's result compared
with that field (absent when Segment's result is undefined). The tests of the helpers
`render` (placeholders) and `flattenObject` are run as the directives that use them,
`@template` and `@flatten`; the schema fixtures of `validate` as mappings to compile.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from trackway.mapping import MappingError, UnmappableEvent, compile_mapping

CASES_FILE = Path(__file__).parent / "cases" / "segment_mapping_kit.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())["cases"]
APPLICABLE = [case for case in CASES if "not_applicable" not in case]
UNDEFINED = "__undefined__"  # how the cases write JavaScript's undefined


def _as_mapping(case: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """The Segment mapping a case runs, and the payload (None: only compiled)."""
    if case["kind"] == "transform":
        return case["mapping"], case.get("payload", {})
    if case["kind"] == "validate":
        return case["mapping"], None
    if case["kind"] == "render":
        template, *data = case["args"]
        return {"@template": template}, data[0] if data else {}
    defaults = [None, "", ".", False]  # flattenObject's
    args = [d if a == UNDEFINED else a for a, d in zip(case["args"], defaults, strict=False)]
    value, prefix, separator, omit_arrays = args + defaults[len(args) :]
    assert prefix == ""  # (the argument of Segment's own recursion)
    options = {"value": {"@path": "$.value"}, "separator": separator, "omitArrays": omit_arrays}
    return {"@flatten": options}, {"value": value}


def _outcome(mapping: Any, payload: Any) -> Any:
    """What Trackway does: {"error": ...}, {"ok": true} (compiled only) or the value."""
    try:
        compiled = compile_mapping({"value": mapping})
        if payload is None:
            return {"ok": True}
        return compiled.apply(payload).get("value", UNDEFINED)
    except (MappingError, UnmappableEvent) as exc:
        return {"error": str(exc)}


def _agrees(outcome: Any, expected: Any) -> bool:
    if isinstance(expected, dict) and set(expected) == {"error"}:
        return isinstance(outcome, dict) and set(outcome) == {"error"}
    if expected == {"ok": True}:
        return not (isinstance(outcome, dict) and set(outcome) == {"error"})
    # (as JSON, so that true is not 1)
    return json.dumps(outcome, sort_keys=True) == json.dumps(expected, sort_keys=True)


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['source']['file'].rsplit('/', 1)[-1]}: {case['source']['test']}"


@pytest.mark.parametrize("case", APPLICABLE, ids=_case_id)
def test_maps_as_segment_does(case: dict[str, Any]) -> None:
    outcome = _outcome(*_as_mapping(case))
    if "difference" in case:  # intended: the case says why and what Trackway does
        assert _agrees(outcome, case["trackway"]), outcome
        assert not _agrees(outcome, case["expected"])
    else:
        assert _agrees(outcome, case["expected"]), outcome


def test_every_case_is_checked_or_says_why_not() -> None:
    assert len(CASES) == 167
    for case in CASES:
        assert case["source"]["file"] and case["source"]["test"]
        assert case["kind"] in ("transform", "validate", "render", "flattenObject")
        if "difference" in case:
            assert case["trackway"] is not None and case["difference"]
    counts = {key: sum(key in case for case in CASES) for key in ("difference", "not_applicable")}
    assert counts == {"difference": 1, "not_applicable": 5}
