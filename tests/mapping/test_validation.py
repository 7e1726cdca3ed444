"""A mapping is validated when it is applied to the configuration: clear errors that name
the field path at fault."""

from typing import Any

import pytest

from trackway.mapping import DIRECTIVES, MappingError, compile_mapping


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"properties": {"price": {"@foo": 1}}}, "properties.price: unknown directive @foo"),
        ({"name": {"@liquid": "{{ x }}"}}, "name: @liquid is not supported; use @template"),
        (
            {"a": {"@path": "$.x", "b": 1}},
            "a: a directive must be the only key of its object, found '@path', 'b'",
        ),
        (
            {"a": {"@path": "$.x", "@template": "y"}},
            "a: a directive must be the only key of its object, found '@path', '@template'",
        ),
        ({"a": {"@path": 5}}, "a.@path: a path must be a string, got a number"),
        ({"a": {"@path": "$.x..y"}}, "a.@path: invalid path '$.x..y'"),
        ({"a": {"@path": "$.x[a]"}}, "a.@path: invalid path '$.x[a]'"),
        ({"a": {"@path": "."}}, "a.@path: invalid path '.'"),
        (
            {"a": {"@template": ["x"]}},
            "a.@template: @template takes a string or a directive, got an array",
        ),
        ({"a": {"@template": "Hi {{ x. }}"}}, "a.@template: invalid path 'x.'"),
        ({"a": {"@literal": {1, 2}}}, "a.@literal: a set is not a JSON value"),
        ({"a": {"@literal": {"x": [float("nan")]}}}, "a.@literal.x[0]: nan is not a JSON number"),
        ({"a": {"@if": "x"}}, "a.@if: @if takes an object of options, got a string"),
        ({"a": {"@if": {"then": 1}}}, "a.@if: @if needs exactly one of 'exists' and 'blank'"),
        (
            {"a": {"@if": {"exists": 1, "blank": 1, "then": 1}}},
            "a.@if: @if needs exactly one of 'exists' and 'blank'",
        ),
        ({"a": {"@if": {"exists": 1}}}, "a.@if: @if needs 'then' or 'else'"),
        (
            {"a": {"@if": {"exists": 1, "then": 1, "otherwise": 2}}},
            "a.@if: @if has no option 'otherwise'",
        ),
        (
            {"a": {"@if": {"exists": {"@path": "$.x"}, "then": {"@nope": 1}}}},
            "a.@if.then: unknown directive @nope",
        ),
        (
            {"a": {"@if": {"exists": {"@path": 1}, "then": 1}}},
            "a.@if.exists.@path: a path must be a string, got a number",
        ),
        (
            {"a": {"@arrayPath": "$.x"}},
            "a.@arrayPath: @arrayPath takes [path] or [path, item shape]",
        ),
        ({"a": {"@arrayPath": []}}, "a.@arrayPath: @arrayPath takes [path] or [path, item shape]"),
        ({"a": {"@arrayPath": [5]}}, "a.@arrayPath: a path must be a string, got a number"),
        (
            {"a": {"@arrayPath": ["$.x", "sku"]}},
            "a.@arrayPath: the item shape of @arrayPath must be an object, got a string",
        ),
        (
            {"a": {"@arrayPath": ["$.x", {"b": {"@bad": 1}}]}},
            "a.@arrayPath[1].b: unknown directive @bad",
        ),
        ({"a": {"@arrayPath": [{"@bad": 1}]}}, "a.@arrayPath[0]: unknown directive @bad"),
        ({"a": {"@case": {"operator": "lower"}}}, "a.@case: @case needs 'value'"),
        (
            {"a": {"@case": {"operator": "title", "value": "x"}}},
            "a.@case: operator must be 'lower' or 'upper', got 'title'",
        ),
        ({"a": {"@replace": {"value": "x"}}}, "a.@replace: @replace needs 'pattern'"),
        (
            {"a": {"@replace": {"value": "x", "pattern": ""}}},
            "a.@replace: pattern must be 1 to 10 characters, got 0",
        ),
        (
            {"a": {"@replace": {"value": "x", "pattern": 1}}},
            "a.@replace: pattern must be a string, got a number",
        ),
        (
            {"a": {"@replace": {"value": "x", "pattern": "a", "global": "yes"}}},
            "a.@replace: global must be a boolean, got a string",
        ),
        (
            {"a": {"@replace": {"value": "x", "pattern": "a", "pattern3": "b"}}},
            "a.@replace: @replace has no option 'pattern3'",
        ),
        (  # Segment's limits
            {"a": {"@replace": {"value": "x", "pattern": "waaaaaytoolong"}}},
            "a.@replace: pattern must be 1 to 10 characters, got 14",
        ),
        (
            {"a": {"@replace": {"value": "x", "pattern": "a", "replacement": "waaaaaytoolong"}}},
            "a.@replace: replacement must be at most 10 characters",
        ),
        (
            {"a": {"@replace": {"value": "x", "pattern": "a", "pattern2": "b" * 11}}},
            "a.@replace: pattern2 must be 1 to 10 characters, got 11",
        ),
        (
            {"a": {"@merge": {"objects": [{}, 1], "direction": "left"}}},
            "a.@merge: objects[1] must be an object or a directive, got a number",
        ),
        (
            {"a": {"@path": "$.x", "_metadata": {}, "@template": "y"}},
            "a: a directive must be the only key of its object, found '@path', '@template'",
        ),
        (
            {"a": {"@json": {"mode": "pretty", "value": 1}}},
            "a.@json: mode must be 'encode' or 'decode', got 'pretty'",
        ),
        ({"a": {"@json": {"value": 1}}}, "a.@json: @json needs 'mode'"),
        ({"a": {"@flatten": {"value": 1}}}, "a.@flatten: @flatten needs 'separator'"),
        (
            {"a": {"@flatten": {"value": 1, "separator": ""}}},
            "a.@flatten: separator must not be empty",
        ),
        (
            {"a": {"@flatten": {"value": 1, "separator": ".", "omitArrays": 1}}},
            "a.@flatten: omitArrays must be a boolean, got a number",
        ),
        (
            {"a": {"@merge": {"objects": {}, "direction": "left"}}},
            "a.@merge: objects must be an array, got an object",
        ),
        (
            {"a": {"@merge": {"objects": [], "direction": "up"}}},
            "a.@merge: direction must be 'left' or 'right', got 'up'",
        ),
        (
            {"a": {"@merge": {"objects": [{"@x": 1}], "direction": "left"}}},
            "a.@merge.objects[0]: unknown directive @x",
        ),
        ({"a": {"@transform": {"apply": {}}}}, "a.@transform: @transform needs 'mapping'"),
        (
            {"a": {"@transform": {"apply": {"@path": "$.x"}, "mapping": {}}}},
            "a.@transform: apply must be an object of fields (a mapping), not a directive",
        ),
        (
            {"a": {"@transform": {"apply": {}, "mapping": {"@y": 1}}}},
            "a.@transform.mapping: unknown directive @y",
        ),
        ({"a": {"@excludeWhenNull": {"@q": 1}}}, "a.@excludeWhenNull: unknown directive @q"),
        ({"a": {"b": [1, {"@q": 1}]}}, "a.b[1]: unknown directive @q"),
        ({"a": {1: "x"}}, "a: object keys must be strings, got 1"),
        ({"a": (1, 2)}, "a: a tuple is not a JSON value"),
        ([{"a": 1}], "a mapping must be an object of fields, got an array"),
        ({"@path": "$.x"}, "a mapping must be an object of fields, not a directive"),
    ],
)
def test_invalid_mappings_are_refused_naming_the_field(spec: Any, error: str) -> None:
    with pytest.raises(MappingError) as caught:
        compile_mapping(spec)
    assert str(caught.value) == error


def test_the_error_keeps_the_path_apart() -> None:
    with pytest.raises(MappingError) as caught:
        compile_mapping({"properties": {"price": {"@foo": 1}}})
    assert caught.value.where == "properties.price"
    assert caught.value.message == "unknown directive @foo"


def test_every_directive_of_the_reference_but_liquid_is_known() -> None:
    assert sorted(DIRECTIVES) == sorted(
        [
            "@path",
            "@template",
            "@literal",
            "@if",
            "@arrayPath",
            "@case",
            "@replace",
            "@json",
            "@flatten",
            "@merge",
            "@transform",
            "@excludeWhenNull",
        ]
    )
