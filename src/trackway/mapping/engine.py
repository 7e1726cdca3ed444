"""Compiling a mapping (raw JSON values mixed with directives) and applying it to events."""

from typing import Any

from trackway.fql.evaluate import MISSING
from trackway.mapping.directives import (
    DIRECTIVES,
    MappingError,
    Resolver,
    Site,
    UnmappableEvent,
    check_json,
    defined,
    directive_keys,
    is_directive,
    type_name,
)

_UNSUPPORTED = {"@liquid": "@liquid is not supported; use @template"}


class Mapping:
    """A validated mapping; `apply(event)` builds one payload from one event.

    Values taken from the event are not copied: treat the payload as read-only, or copy
    what you change.
    """

    __slots__ = ("_resolve", "spec")

    def __init__(self, spec: dict[str, Any], resolve: Resolver) -> None:
        self.spec = spec
        self._resolve = resolve

    def apply(self, event: Any) -> dict[str, Any]:
        """The payload for `event`: keys that resolve to nothing are left out; raises
        UnmappableEvent when the event is not an object or a directive cannot use it."""
        if not isinstance(event, dict):
            raise UnmappableEvent(f"the event must be an object, got {type_name(event)}")
        payload: dict[str, Any] = self._resolve(event)
        return payload


def compile_mapping(spec: Any) -> Mapping:
    """Validate a mapping; raises MappingError naming the field path at fault."""
    if not isinstance(spec, dict):
        raise MappingError("", f"a mapping must be an object of fields, got {type_name(spec)}")
    if is_directive(spec):
        raise MappingError("", "a mapping must be an object of fields, not a directive")
    return Mapping(spec, compile_value(spec, ""))


def compile_value(value: Any, where: str) -> Resolver:
    """Compile one mapping value found at `where` (a field path such as `properties.sku`)."""
    if is_directive(value):
        return _directive(value, where)
    if isinstance(value, dict):
        fields = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise MappingError(where, f"object keys must be strings, got {key!r}")
            fields.append((key, compile_value(item, f"{where}.{key}" if where else key)))
        return lambda payload: {
            key: found for key, resolve in fields if (found := resolve(payload)) is not MISSING
        }
    if isinstance(value, list):
        items = [compile_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return lambda payload: [defined(resolve(payload)) for resolve in items]
    check_json(value, where)
    return lambda payload: value


def _directive(value: dict[str, Any], where: str) -> Resolver:
    names = directive_keys(value)
    if len(names) != 1:
        keys = ", ".join(repr(key) for key in names)
        raise MappingError(where, f"a directive must be the only key of its object, found {keys}")
    name = names[0]
    options = value[name]
    if name in _UNSUPPORTED:
        raise MappingError(where, _UNSUPPORTED[name])
    compiler = DIRECTIVES.get(name)
    if compiler is None:
        raise MappingError(where, f"unknown directive {name}")
    return compiler(options, Site(name, f"{where}.{name}" if where else name, compile_value))
