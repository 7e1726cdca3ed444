"""Property-based tests of the mapping engine."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fql.strategies import events, json_values, numbers
from trackway import codec
from trackway.fql.lexer import as_text
from trackway.mapping import compile_mapping

SETTINGS = settings(max_examples=100, deadline=None)

# Raw values: JSON whose objects have no `@` key (such an object would be a directive).
raw_keys = st.text(max_size=6).filter(lambda key: not key.startswith("@"))
raw_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(raw_keys, children, max_size=3)
    ),
    max_leaves=10,
)
# Keys a path can name: no dots or brackets, which separate the names of a path.
path_keys = st.text(min_size=1, max_size=5).filter(lambda key: not set(key) & set(".[]"))
nested: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=5),
    lambda children: (
        st.lists(children, min_size=1, max_size=3)
        | st.dictionaries(path_keys, children, min_size=1, max_size=3)
    ),
    max_leaves=12,
)


@SETTINGS
@given(st.dictionaries(raw_keys, raw_values, max_size=4), events)
def test_a_mapping_of_raw_values_returns_them_unchanged(spec: dict[str, Any], event: Any) -> None:
    assert compile_mapping(spec).apply(event) == spec


@SETTINGS
@given(json_values, events)
def test_literal_returns_any_json_unchanged(value: Any, event: Any) -> None:
    assert compile_mapping({"x": {"@literal": value}}).apply(event) == {"x": value}


@SETTINGS
@given(st.dictionaries(path_keys, nested, min_size=1, max_size=3), st.data())
def test_path_finds_the_value_anywhere_in_nested_objects(event: Any, data: st.DataObject) -> None:
    path, value = "$", event
    while True:
        if isinstance(value, dict):
            key = data.draw(st.sampled_from(sorted(value)))
            path, value = f"{path}.{key}", value[key]
        elif isinstance(value, list):
            index = data.draw(st.integers(0, len(value) - 1))
            path, value = f"{path}[{index}]", value[index]
        if not isinstance(value, dict | list) or data.draw(st.booleans()):
            break
    assert compile_mapping({"found": {"@path": path}}).apply(event) == {"found": value}


# Keys a placeholder can name: also no braces, no spaces around, and not `$` (the payload).
template_keys = path_keys.filter(
    lambda key: key == key.strip() and key != "$" and not set(key) & set("{}")
)
plain_text = st.text().filter(lambda text: not set(text) & set("{}"))


@SETTINGS
@given(template_keys, nested, plain_text)
def test_template_writes_a_value_into_the_text(key: str, value: Any, text: str) -> None:
    expected = as_text(value) if not isinstance(value, dict | list) else codec.dumps_text(value)
    mapping = compile_mapping({"t": {"@template": f"{text}{{{{{key}}}}}{text}"}})
    assert mapping.apply({key: value}) == {"t": f"{text}{'' if value is None else expected}{text}"}


EVERY_DIRECTIVE = compile_mapping(
    {
        "path": {"@path": "$.properties.a"},
        "template": {"@template": "{{properties.a}}-{{traits.b[0]}}"},
        "if": {"@if": {"blank": {"@path": "$.properties.b"}, "then": 1, "else": 2}},
        "array": {"@arrayPath": ["$.properties.a", {"x": {"@path": "$.a"}, "y": {"@path": "$.0"}}]},
        "case": {"@case": {"operator": "upper", "value": {"@path": "$.properties.a"}}},
        "replace": {"@replace": {"value": {"@path": "$.properties.a"}, "pattern": "a"}},
        "encode": {"@json": {"mode": "encode", "value": {"@path": "$.properties"}}},
        "decode": {"@json": {"mode": "decode", "value": {"@path": "$.properties.a"}}},
        "flatten": {"@flatten": {"value": {"@path": "$.properties"}, "separator": "."}},
        "merge": {
            "@merge": {
                "objects": [{"@path": "$.properties"}, {"@path": "$.traits"}],
                "direction": "left",
            }
        },
        "transform": {
            "@transform": {"apply": {"p": {"@path": "$.properties"}}, "mapping": {"@path": "$.p.a"}}
        },
        "exclude": {"@excludeWhenNull": {"@path": "$.context.a"}},
    }
)


@SETTINGS
@given(events)
def test_every_directive_resolves_on_any_json_event(event: Any) -> None:
    payload = EVERY_DIRECTIVE.apply(event)
    assert codec.loads(codec.dumps(payload)) == payload  # plain JSON, whatever came in
