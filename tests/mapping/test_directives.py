"""Every mapping directive of the reference table, with the reference semantics."""

from typing import Any

import pytest

from trackway.mapping import UnmappableEvent, compile_mapping

EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "user-1",
    "anonymousId": None,
    "properties": {
        "sku": "SKU-42",
        "price": 19.0,
        "quantity": 2,
        "coupon": "",
        "premium": True,
        "name": "Blue Shirt",
        "payload": '{"a": [1, 2]}',
        "broken": '{"a": ',
        "products": [
            {"sku": "A", "price": 1, "tags": ["x", "y"]},
            {"sku": "B", "price": 2},
        ],
        "address": {"city": "Paris", "geo": {"lat": 48.8, "lon": 2.3}},
    },
    "traits": {"name": "Ann <admin>", "email": "Ann@Example.com"},
    "context": {"locale": "fr-FR", "traits": {"plan": "pro"}},
}


def apply(value: Any) -> Any:
    """The value a mapping field resolves to on EVENT (`...` when the key is left out)."""
    return compile_mapping({"field": value}).apply(EVENT).get("field", ...)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"@path": "$.properties.sku"}, "SKU-42"),
        ({"@path": "properties.sku"}, "SKU-42"),  # the $. is optional
        ({"@path": "$.properties.products[1].sku"}, "B"),
        ({"@path": "$.properties.products[0].tags[1]"}, "y"),
        ({"@path": "$.properties.products.1.sku"}, "B"),
        ({"@path": "$.properties.address"}, {"city": "Paris", "geo": {"lat": 48.8, "lon": 2.3}}),
        ({"@path": "$.properties.products[5].sku"}, ...),
        ({"@path": "$.properties.nope"}, ...),  # undefined: the key is left out
        ({"@path": "$.anonymousId"}, None),  # null is kept
        ({"@path": "$.properties.coupon"}, ""),
        ({"@path": "$.properties.sku.length"}, ...),
    ],
)
def test_path(value: Any, expected: Any) -> None:
    assert apply(value) == expected


def test_path_dollar_alone_is_the_whole_event() -> None:
    assert apply({"@path": "$"}) == EVENT


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {{traits.name}}", "Hi Ann <admin>"),  # nothing is HTML-escaped
        ("Hi {{{traits.name}}}", "Hi Ann <admin>"),
        ("Hi {{ traits.name }}!", "Hi Ann <admin>!"),
        ("Hi {{$.traits.name}}", "Hi Ann <admin>"),
        ("Hi {{traits.nickname}}!", "Hi !"),  # missing: ''
        ("{{anonymousId}}", ""),  # null: ''
        ("{{properties.price}} x {{properties.quantity}}", "19 x 2"),
        ("{{properties.premium}}", "true"),
        ("{{properties.products[1].sku}}", "B"),
        ("{{properties.address.geo}}", '{"lat":48.8,"lon":2.3}'),
        ("no placeholders", "no placeholders"),
        ("{{userId}}{{userId}}", "user-1user-1"),
        ("{ {userId} }", "{ {userId} }"),
    ],
)
def test_template(template: str, expected: str) -> None:
    assert apply({"@template": template}) == expected


@pytest.mark.parametrize(
    "value",
    [True, 0, "", None, [1, {"x": "$.x"}], {"@type": "Order", "@id": 1}, {"a": {"b": []}}],
)
def test_literal_is_the_value_as_is(value: Any) -> None:
    assert apply({"@literal": value}) == value


def test_literal_applies_the_directives_it_holds_as_segment_does() -> None:
    value = {
        "sku": {"@path": "$.properties.sku"},
        "ld": {"@type": "Offer"},
        "gone": {"@path": "$.x"},
    }
    assert apply({"@literal": value}) == {"sku": "SKU-42", "ld": {"@type": "Offer"}}
    assert apply({"@literal": [{"@path": "$.x"}, {"@path": "$.userId"}]}) == [None, "user-1"]
    assert apply({"@literal": {"@path": "$.userId"}}) == "user-1"


def test_literal_gives_every_event_its_own_copy() -> None:
    mapping = compile_mapping({"tags": {"@literal": {"list": [1]}}})
    first = mapping.apply(EVENT)
    first["tags"]["list"].append(2)
    assert mapping.apply(EVENT) == {"tags": {"list": [1]}}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"exists": {"@path": "$.userId"}, "then": "yes", "else": "no"}, "yes"),
        ({"exists": {"@path": "$.nope"}, "then": "yes", "else": "no"}, "no"),
        ({"exists": {"@path": "$.anonymousId"}, "then": "yes", "else": "no"}, "no"),
        ({"exists": {"@path": "$.properties.coupon"}, "then": "yes", "else": "no"}, "yes"),
        ({"exists": {"@path": "$.nope"}, "then": "yes"}, ...),  # missing branch: key left out
        ({"exists": {"@path": "$.userId"}, "else": "no"}, ...),
        ({"exists": {"@path": "$.userId"}, "then": {"@path": "$.properties.sku"}}, "SKU-42"),
        ({"exists": {"@path": "$.nope"}, "then": 1, "else": {"@path": "$.nope"}}, ...),
        ({"exists": {"@path": "$.nope"}, "then": 1, "else": False}, False),
        ({"exists": "a raw value exists", "then": 1}, 1),
        # blank: like exists, and "" counts as absent too
        ({"blank": {"@path": "$.properties.coupon"}, "then": "set", "else": "blank"}, "blank"),
        ({"blank": {"@path": "$.properties.sku"}, "then": "set", "else": "blank"}, "set"),
        ({"blank": {"@path": "$.nope"}, "then": "set", "else": "blank"}, "blank"),
        ({"blank": {"@path": "$.anonymousId"}, "then": "set", "else": "blank"}, "blank"),
        ({"blank": {"@path": "$.properties.quantity"}, "then": "set"}, "set"),
    ],
)
def test_if(options: dict[str, Any], expected: Any) -> None:
    assert apply({"@if": options}) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["$.properties.products", {"id": {"@path": "$.sku"}}], [{"id": "A"}, {"id": "B"}]),
        (
            ["$.properties.products", {"id": {"@path": "sku"}, "first": {"@path": "tags[0]"}}],
            [{"id": "A", "first": "x"}, {"id": "B"}],
        ),
        (["$.properties.products", {"@path": "$.price"}], [1, 2]),
        (["$.properties.products", {"@path": "$.tags"}], [["x", "y"], None]),
        (["$.properties.products"], EVENT["properties"]["products"]),
        (["$.properties.products", {}], EVENT["properties"]["products"]),
        (["$.properties.address", {"town": {"@path": "$.city"}}], [{"town": "Paris"}]),
        (["$.properties.sku", {"id": {"@path": "$.sku"}}], "SKU-42"),
        (["$.properties.nope", {"id": {"@path": "$.sku"}}], ...),
        ([{"@path": "$.properties.products"}, {"@path": "$.sku"}], ["A", "B"]),
        (
            ["$.properties.products", {"const": 1, "event": {"@path": "$.event"}}],
            [{"const": 1}] * 2,
        ),
    ],
)
def test_array_path(value: list[Any], expected: Any) -> None:
    assert apply({"@arrayPath": value}) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"operator": "lower", "value": {"@path": "$.traits.email"}}, "ann@example.com"),
        ({"operator": "upper", "value": {"@path": "$.traits.email"}}, "ANN@EXAMPLE.COM"),
        ({"operator": "upper", "value": "raw"}, "RAW"),
        ({"operator": "upper", "value": {"@path": "$.properties.quantity"}}, 2),
        ({"operator": "upper", "value": {"@path": "$.nope"}}, ...),
    ],
)
def test_case(options: dict[str, Any], expected: Any) -> None:
    assert apply({"@case": options}) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"value": {"@path": "$.properties.name"}, "pattern": " ", "replacement": "_"},
            "Blue_Shirt",
        ),
        ({"value": "a-b-c", "pattern": "-"}, "abc"),  # replacement defaults to ""
        ({"value": "a-b-c", "pattern": "-", "replacement": "+", "global": False}, "a+b-c"),
        ({"value": "Abc abc", "pattern": "abc", "replacement": "x"}, "Abc x"),
        ({"value": "Abc abc", "pattern": "abc", "replacement": "x", "ignorecase": True}, "x x"),
        ({"value": "a.b*c", "pattern": ".", "replacement": "$1"}, "a$1b*c"),  # literal, both sides
        ({"value": "a.b", "pattern": ".", "replacement": "\\1\\g<0>"}, "a\\1\\g<0>b"),
        ({"value": {"@path": "$.properties.price"}, "pattern": "9", "replacement": "8"}, "18"),
        (
            {"value": {"@path": "$.properties.premium"}, "pattern": "true", "replacement": "yes"},
            "yes",
        ),
        # as in Segment: nothing, null, objects and arrays give ""
        ({"value": {"@path": "$.nope"}, "pattern": "a"}, ""),
        ({"value": {"@path": "$.anonymousId"}, "pattern": "a"}, ""),
        ({"value": {"@path": "$.properties"}, "pattern": "a"}, ""),
        (  # a second pattern, replaced after the first
            {"value": "a-b c", "pattern": "-", "pattern2": " ", "replacement2": "_"},
            "ab_c",
        ),
        ({"value": "A-a", "pattern": "a", "pattern2": "-", "ignorecase": True}, ""),
    ],
)
def test_replace(options: dict[str, Any], expected: Any) -> None:
    assert apply({"@replace": options}) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"mode": "encode", "value": {"@path": "$.properties.address.geo"}},
            '{"lat":48.8,"lon":2.3}',
        ),
        ({"mode": "encode", "value": "text"}, '"text"'),
        ({"mode": "encode", "value": {"@path": "$.anonymousId"}}, "null"),
        ({"mode": "encode", "value": {"@path": "$.nope"}}, ...),
        ({"mode": "decode", "value": {"@path": "$.properties.payload"}}, {"a": [1, 2]}),
        ({"mode": "decode", "value": {"@path": "$.properties.broken"}}, '{"a": '),  # unchanged
        ({"mode": "decode", "value": {"@path": "$.properties.quantity"}}, 2),
        ({"mode": "decode", "value": {"@path": "$.nope"}}, ...),
    ],
)
def test_json(options: dict[str, Any], expected: Any) -> None:
    assert apply({"@json": options}) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"value": {"@path": "$.properties.address"}, "separator": "."},
            {"city": "Paris", "geo.lat": 48.8, "geo.lon": 2.3},
        ),
        (
            {"value": {"@path": "$.properties.products"}, "separator": "_"},
            {
                "0_sku": "A",
                "0_price": 1,
                "0_tags_0": "x",
                "0_tags_1": "y",
                "1_sku": "B",
                "1_price": 2,
            },
        ),
        (
            {"value": {"@path": "$.properties.products[0]"}, "separator": "_", "omitArrays": True},
            {"sku": "A", "price": 1, "tags": ["x", "y"]},
        ),
        ({"value": {"a": {}, "b": {"c": None}}, "separator": "/"}, {"b/c": None}),
        ({"value": {"@path": "$.properties.sku"}, "separator": "."}, "SKU-42"),
        ({"value": {"@path": "$.nope"}, "separator": "."}, ...),
    ],
)
def test_flatten(options: dict[str, Any], expected: Any) -> None:
    assert apply({"@flatten": options}) == expected


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"objects": [{"a": 1, "b": 1}, {"b": 2, "c": 2}], "direction": "right"},
            {"a": 1, "b": 2, "c": 2},
        ),
        (
            {"objects": [{"a": 1, "b": 1}, {"b": 2, "c": 2}], "direction": "left"},
            {"a": 1, "b": 1, "c": 2},
        ),
        (
            {
                "objects": [{"@path": "$.context.traits"}, {"@path": "$.traits"}],
                "direction": "right",
            },
            {"plan": "pro", "name": "Ann <admin>", "email": "Ann@Example.com"},
        ),
        (
            {
                "objects": [{"@path": "$.nope"}, {"@path": "$.userId"}, {"a": 1}],
                "direction": "right",
            },
            {"a": 1},
        ),
        ({"objects": [], "direction": "left"}, {}),
    ],
)
def test_merge(options: dict[str, Any], expected: Any) -> None:
    assert apply({"@merge": options}) == expected


def test_transform_maps_the_result_of_a_first_mapping() -> None:
    value = {
        "@transform": {
            "apply": {
                "city": {"@path": "$.properties.address.city"},
                "missing": {"@path": "$.nope"},
            },
            "mapping": {
                "where": {"@template": "in {{city}}"},
                "had_missing": {
                    "@if": {"exists": {"@path": "$.missing"}, "then": True, "else": False}
                },
            },
        }
    }
    assert apply(value) == {"where": "in Paris", "had_missing": False}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"@path": "$.anonymousId"}, ...),
        ({"@path": "$.nope"}, ...),
        ({"@path": "$.userId"}, "user-1"),
        ({"@path": "$.properties.coupon"}, ""),
        (None, ...),
    ],
)
def test_exclude_when_null(value: Any, expected: Any) -> None:
    assert apply({"@excludeWhenNull": value}) == expected


def test_directives_nest_and_raw_values_mix_with_them() -> None:
    mapping = compile_mapping(
        {
            "action": "create",
            "user": {
                "id": {"@path": "$.userId"},
                "email": {"@case": {"operator": "lower", "value": {"@path": "$.traits.email"}}},
                "nickname": {"@path": "$.traits.nickname"},
                "anonymous": {"@path": "$.anonymousId"},
            },
            "skus": {"@arrayPath": ["$.properties.products", {"@path": "$.sku"}]},
            "items": [{"@path": "$.properties.sku"}, {"@path": "$.nope"}, 3],
            "empty": {},
        }
    )
    assert mapping.apply(EVENT) == {
        "action": "create",
        "user": {"id": "user-1", "email": "ann@example.com", "anonymous": None},
        "skus": ["A", "B"],
        "items": ["SKU-42", None, 3],  # an array item has no key to leave out: null
        "empty": {},
    }


def test_applying_never_changes_the_event() -> None:
    before = repr(EVENT)
    mapping = compile_mapping(
        {
            "flat": {"@flatten": {"value": {"@path": "$.properties"}, "separator": "."}},
            "merged": {
                "@merge": {"objects": [{"@path": "$.traits"}, {"x": 1}], "direction": "right"}
            },
        }
    )
    mapping.apply(EVENT)
    assert repr(EVENT) == before


def test_template_and_path_may_come_from_a_directive() -> None:
    event = {"my": {"template": "Hi {{name}}", "path": "$.name"}, "name": "Ann", "n": 1}
    mapping = compile_mapping(
        {
            "greeting": {"@template": {"@path": "$.my.template"}},
            "name": {"@path": {"@path": "$.my.path"}},
            "hint": {"@template": "{{name}}", "_metadata": {"label": "ignored"}},
        }
    )
    assert mapping.apply(event) == {"greeting": "Hi Ann", "name": "Ann", "hint": "Ann"}
    for path in ("$.n", "$.none"):
        broken = compile_mapping({"greeting": {"@template": {"@path": path}}})
        with pytest.raises(UnmappableEvent) as refused:
            broken.apply(event)
        got = "a number" if path == "$.n" else "nothing"
        assert str(refused.value) == f"greeting.@template: expected text, got {got}"


def test_exclude_when_null_removes_null_fields_at_any_depth_of_objects() -> None:
    event = {"o": {"a": None, "b": {"c": None, "d": 1}, "e": [None, {"f": None}]}}
    mapping = compile_mapping({"o": {"@excludeWhenNull": {"@path": "$.o"}}})
    assert mapping.apply(event) == {"o": {"b": {"d": 1}, "e": [None, {"f": None}]}}
    assert event["o"]["a"] is None  # the event is not changed


def test_a_mapping_applies_to_objects_only_as_in_segment() -> None:
    mapping = compile_mapping({"a": {"@path": "$.x"}, "b": {"@template": "{{x}}"}, "c": 1})
    assert mapping.apply({}) == {"b": "", "c": 1}
    for event, name in (([], "an array"), (None, "null"), ("text", "a string"), (1, "a number")):
        with pytest.raises(UnmappableEvent) as refused:
            mapping.apply(event)
        assert str(refused.value) == f"the event must be an object, got {name}"


@pytest.mark.parametrize(
    ("field", "event", "trackway"),
    [
        # The intended differences from Segment's mapping-kit (docs/fql-and-mappings.md,
        # "Differences from Segment's mapping-kit"), with what mapping-kit would give.
        ({"@template": "{{x}}"}, {"x": ["a", "b"]}, '["a","b"]'),  # mapping-kit: "a,b"
        ({"@literal": {"@type": "Offer"}}, {}, {"@type": "Offer"}),  # mapping-kit refuses it
        ({"@if": {"exists": {"@path": "$.x"}, "then": 1, "else": 0}}, {}, 0),  # mk: undefined
        ({"@replace": {"value": "a", "pattern": "a", "replacement": "$&$&"}}, {}, "$&$&"),  # aa
        ({"@flatten": {"value": "text", "separator": "."}}, {}, "text"),  # mk: {"": "text"}
        ({"@merge": {"objects": [{"@path": "$.s"}], "direction": "right"}}, {"s": "ab"}, {}),
    ],
)
def test_intended_differences_from_segment(field: Any, event: Any, trackway: Any) -> None:
    assert compile_mapping({"f": field}).apply(event) == {"f": trackway}
