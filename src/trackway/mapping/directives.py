"""The mapping directives: each checks its options once and returns a resolver.

A resolver takes the payload (the event, or an array item inside `@arrayPath`) and
returns a value, or MISSING for "undefined": a key whose value is MISSING is left out.
"""

import copy
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trackway import codec
from trackway.fql.evaluate import MISSING, lookup
from trackway.fql.lexer import as_text

Resolver = Callable[[Any], Any]
METADATA = "_metadata"
"""A key Segment's mappings may hold beside a directive (editor hints); it is ignored."""
MAX_PATTERN = 10
MAX_REPLACEMENT = 10
"""Segment's limits on the lengths of @replace's patterns and replacements."""
_PATH = re.compile(r"[^.\[\]]+(\[[0-9]+\])*(\.[^.\[\]]+(\[[0-9]+\])*)*")
_PLACEHOLDER = re.compile(r"\{\{\{([^}]+)\}\}\}|\{\{([^}]+)\}\}")
_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


class UnmappableEvent(ValueError):
    """An event a mapping cannot be applied to: not a JSON object, or a directive's
    value of the wrong type (`@template` of a path that holds no string); as in
    Segment, the event is then not sent to the action."""


class MappingError(ValueError):
    """A mapping that is not valid; the message starts with the field path at fault."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


@dataclass(frozen=True, slots=True)
class Site:
    """A directive in a mapping: its name, where it is, and how to compile the mappings
    nested in its options (passed in, as compiling is the engine's job)."""

    directive: str
    where: str
    compile: Callable[[Any, str], Resolver]

    def error(self, message: str) -> MappingError:
        return MappingError(self.where, message)

    def nested(self, value: Any, key: str) -> Resolver:
        """Compile the mapping `value` found at `key` ("then", "[1]") of the options."""
        return self.compile(value, self.where + (key if key.startswith("[") else f".{key}"))


def is_directive(value: Any) -> bool:
    """Whether a mapping value is a directive (an object with an `@` key)."""
    return isinstance(value, dict) and any(str(key).startswith("@") for key in value)


def directive_keys(value: dict[str, Any]) -> list[str]:
    """The keys of a directive object that count (all but Segment's `_metadata`)."""
    return [key for key in value if key != METADATA]


def check_json(value: Any, where: str) -> None:
    """Raise MappingError unless `value` is plain JSON (a YAML file can hold more)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MappingError(where, f"object keys must be strings, got {key!r}")
            check_json(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise MappingError(where, f"{value} is not a JSON number")
    elif value is not None and not isinstance(value, str | int | float):
        raise MappingError(where, f"{type_name(value)} is not a JSON value")


def parse_path(path: Any, site: Site) -> tuple[str, ...]:
    """`$.a.b[0].c` to its names; the `$.` is optional and `$` (or Segment's `$.`) alone
    is the payload."""
    if not isinstance(path, str):
        raise site.error(f"a path must be a string, got {type_name(path)}")
    if path in ("", "$", "$."):
        return ()
    body = path[2:] if path.startswith("$.") else path
    if not _PATH.fullmatch(body):
        raise site.error(f"invalid path {path!r}")
    return tuple(re.findall(r"[^.\[\]]+", body))


def type_name(value: Any) -> str:
    """A value's JSON type, for messages: "an object", "a string", "null"..."""
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), f"a {type(value).__name__}")


def _options(
    value: Any, site: Site, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A directive's options object, its keys checked."""
    if not isinstance(value, dict) or is_directive(value):
        raise site.error(f"{site.directive} takes an object of options, got {type_name(value)}")
    missing = [key for key in required if key not in value]
    if missing:
        raise site.error(f"{site.directive} needs {_quoted(missing)}")
    unknown = [key for key in value if key not in required + optional]
    if unknown:
        raise site.error(f"{site.directive} has no option {_quoted(unknown)}")
    return value


def _choice(options: dict[str, Any], key: str, choices: tuple[str, ...], site: Site) -> str:
    value = options[key]
    if value not in choices:
        raise site.error(f"{key} must be {' or '.join(map(repr, choices))}, got {value!r}")
    return str(value)


def _option(options: dict[str, Any], key: str, kind: type, default: Any, site: Site) -> Any:
    value = options.get(key, default)
    if not isinstance(value, kind):
        raise site.error(f"{key} must be {_TYPE_NAMES[kind]}, got {type_name(value)}")
    return value


def _quoted(keys: list[str]) -> str:
    return ", ".join(repr(key) for key in keys)


def _path(value: Any, site: Site) -> Resolver:
    if is_directive(value):  # the path is what the directive gives, event by event
        source = _text_of(value, site)
        return lambda payload: lookup(payload, _loose_path(source(payload)))
    path = parse_path(value, site)
    return lambda payload: lookup(payload, path)


def _template(value: Any, site: Site) -> Resolver:
    if is_directive(value):  # the template is what the directive gives, event by event
        source = _text_of(value, site)
        return lambda payload: _render(_loose_template(source(payload)), payload)
    if not isinstance(value, str):
        raise site.error(f"@template takes a string or a directive, got {type_name(value)}")
    pieces = _pieces(value, lambda path: parse_path(path, site))
    return lambda payload: _render(pieces, payload)


Pieces = tuple[str | tuple[str, ...], ...]


def _pieces(template: str, parse: Callable[[str], tuple[str, ...]]) -> Pieces:
    """A template as text and the paths of its placeholders, in order."""
    # {{x}} and {{{x}}} are the same here: nothing is HTML-escaped
    pieces: list[str | tuple[str, ...]] = []
    end = 0
    for found in _PLACEHOLDER.finditer(template):
        pieces += [template[end : found.start()], parse((found[1] or found[2]).strip())]
        end = found.end()
    pieces.append(template[end:])
    return tuple(pieces)


def _render(pieces: Pieces, payload: Any) -> str:
    return "".join(p if isinstance(p, str) else _text(lookup(payload, p)) for p in pieces)


def _text_of(value: Any, site: Site) -> Callable[[Any], str]:
    """A nested directive that must give text (the path of @path, the template of
    @template); when an event gives it anything else, the event cannot be mapped."""
    source = site.compile(value, site.where)

    def resolve(payload: Any) -> str:
        found = source(payload)
        if not isinstance(found, str):
            raise UnmappableEvent(f"{site.where}: expected text, got {_found_name(found)}")
        return found

    return resolve


def _found_name(value: Any) -> str:
    return "nothing" if value is MISSING else type_name(value)


@functools.lru_cache(maxsize=256)
def _loose_path(path: str) -> tuple[str, ...]:
    """A path read from an event, as Segment's `get` reads any text: never an error."""
    if path.startswith("$."):
        path = path[2:]
    return tuple(re.findall(r"[^.\[\]]+", path)) if path not in ("", "$", ".") else ()


@functools.lru_cache(maxsize=256)
def _loose_template(template: str) -> Pieces:
    return _pieces(template, _loose_path)


def _text(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    if isinstance(value, dict | list):
        return codec.dumps_text(value)
    return as_text(value)


def _literal(value: Any, site: Site) -> Resolver:
    check_json(value, site.where)
    if not _holds_directive(value):
        if isinstance(value, dict | list):
            # a fresh copy per event: whoever receives the payload may change it
            return lambda payload: copy.deepcopy(value)
        return lambda payload: value
    # As in Segment, the directives inside are applied; the other objects with @ keys
    # (which Segment refuses) stay as written.
    if _known_directive(value):
        return site.compile(value, site.where)
    if isinstance(value, list):
        items = [_literal(item, site) for item in value]
        return lambda payload: [defined(item(payload)) for item in items]
    fields = [(key, _literal(item, site)) for key, item in value.items()]
    return lambda payload: {
        key: found for key, item in fields if (found := item(payload)) is not MISSING
    }


def _known_directive(value: Any) -> bool:
    return is_directive(value) and any(key in DIRECTIVES for key in directive_keys(value))


def _holds_directive(value: Any) -> bool:
    if _known_directive(value):
        return True
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(_holds_directive(item) for item in items)


def _if(value: Any, site: Site) -> Resolver:
    options = _options(value, site, (), ("exists", "blank", "then", "else"))
    conditions = [key for key in ("exists", "blank") if key in options]
    if len(conditions) != 1:
        raise site.error("@if needs exactly one of 'exists' and 'blank'")
    if "then" not in options and "else" not in options:
        raise site.error("@if needs 'then' or 'else'")
    condition = conditions[0]
    test = site.nested(options[condition], condition)
    then = site.nested(options["then"], "then") if "then" in options else None
    else_ = site.nested(options["else"], "else") if "else" in options else None

    def resolve(payload: Any) -> Any:
        found = test(payload)
        holds = found is not MISSING and found is not None
        if condition == "blank":
            holds = holds and found != ""
        branch = then if holds else else_
        return MISSING if branch is None else branch(payload)

    return resolve


def _array_path(value: Any, site: Site) -> Resolver:
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        raise site.error("@arrayPath takes [path] or [path, item shape]")
    first = value[0]
    source = site.nested(first, "[0]") if is_directive(first) else _path(first, site)
    shape = value[1] if len(value) == 2 else {}
    if not isinstance(shape, dict):
        raise site.error(f"the item shape of @arrayPath must be an object, got {type_name(shape)}")
    if not shape:
        return source
    item_resolver = site.nested(shape, "[1]")

    def resolve(payload: Any) -> Any:
        found = source(payload)
        if not isinstance(found, dict | list):
            return found
        items = found if isinstance(found, list) else [found]
        return [defined(item_resolver(item)) for item in items]

    return resolve


def _case(value: Any, site: Site) -> Resolver:
    options = _options(value, site, ("operator", "value"))
    upper = _choice(options, "operator", ("lower", "upper"), site) == "upper"
    source = site.nested(options["value"], "value")

    def resolve(payload: Any) -> Any:
        found = source(payload)
        if not isinstance(found, str):
            return found
        return found.upper() if upper else found.lower()

    return resolve


def _replace(value: Any, site: Site) -> Resolver:
    options = _options(
        value,
        site,
        ("value", "pattern"),
        ("replacement", "pattern2", "replacement2", "global", "ignorecase"),
    )
    count = 0 if _option(options, "global", bool, True, site) else 1
    flags = re.IGNORECASE if _option(options, "ignorecase", bool, False, site) else 0
    steps = [_replacement(options, "pattern", "replacement", site)]
    if "pattern2" in options:
        steps.append(_replacement(options, "pattern2", "replacement2", site))
    compiled = [(re.compile(re.escape(pattern), flags), new) for pattern, new in steps]
    source = site.nested(options["value"], "value")

    def resolve(payload: Any) -> str:
        found = source(payload)
        if not isinstance(found, str | int | float):  # (bool is an int: "true"/"false")
            return ""  # as in Segment: null, objects, arrays and nothing give ""
        text = as_text(found)
        for regex, new in compiled:
            # a function, so that backslashes in the replacement stay literal
            text = regex.sub(lambda _, new=new: new, text, count=count)  # type: ignore[misc]
        return text

    return resolve


def _replacement(options: dict[str, Any], key: str, new_key: str, site: Site) -> tuple[str, str]:
    """One pattern and its replacement, within Segment's limits."""
    pattern = _option(options, key, str, None, site)
    if not 1 <= len(pattern) <= MAX_PATTERN:
        raise site.error(f"{key} must be 1 to {MAX_PATTERN} characters, got {len(pattern)}")
    replacement = _option(options, new_key, str, "", site)
    if len(replacement) > MAX_REPLACEMENT:
        raise site.error(f"{new_key} must be at most {MAX_REPLACEMENT} characters")
    return pattern, replacement


def _json(value: Any, site: Site) -> Resolver:
    options = _options(value, site, ("mode", "value"))
    encode = _choice(options, "mode", ("encode", "decode"), site) == "encode"
    source = site.nested(options["value"], "value")

    def resolve(payload: Any) -> Any:
        found = source(payload)
        if encode:
            return found if found is MISSING else codec.dumps_text(found)
        if not isinstance(found, str):
            return found
        try:
            return codec.loads(found)
        except codec.DecodeError:
            return found

    return resolve


def _flatten(value: Any, site: Site) -> Resolver:
    options = _options(value, site, ("value", "separator"), ("omitArrays",))
    separator = _option(options, "separator", str, None, site)
    if not separator:
        raise site.error("separator must not be empty")
    omit_arrays = _option(options, "omitArrays", bool, False, site)
    source = site.nested(options["value"], "value")

    def flattenable(found: Any) -> bool:
        return isinstance(found, dict) or (isinstance(found, list) and not omit_arrays)

    def flatten(found: Any, prefix: str, into: dict[str, Any]) -> None:
        items = found.items() if isinstance(found, dict) else enumerate(found)
        for key, item in items:
            name = f"{prefix}{separator}{key}" if prefix else str(key)
            if flattenable(item):
                flatten(item, name, into)
            else:
                into[name] = item

    def resolve(payload: Any) -> Any:
        found = source(payload)
        if not flattenable(found):
            return found
        flat: dict[str, Any] = {}
        flatten(found, "", flat)
        return flat

    return resolve


def _merge(value: Any, site: Site) -> Resolver:
    options = _options(value, site, ("objects", "direction"))
    objects = options["objects"]
    if not isinstance(objects, list):
        raise site.error(f"objects must be an array, got {type_name(objects)}")
    left = _choice(options, "direction", ("left", "right"), site) == "left"
    for index, item in enumerate(objects):
        if not isinstance(item, dict):
            raise site.error(
                f"objects[{index}] must be an object or a directive, got {type_name(item)}"
            )
    sources = [site.nested(item, f"objects[{i}]") for i, item in enumerate(objects)]

    def resolve(payload: Any) -> dict[str, Any]:
        found = [source(payload) for source in sources]
        merged: dict[str, Any] = {}
        for item in found:
            if isinstance(item, dict):
                if left:  # earlier objects win
                    for key, value in item.items():
                        merged.setdefault(key, value)
                else:
                    merged.update(item)
        return merged

    return resolve


def _transform(value: Any, site: Site) -> Resolver:
    options = _options(value, site, ("apply", "mapping"))
    if not isinstance(options["apply"], dict) or is_directive(options["apply"]):
        raise site.error("apply must be an object of fields (a mapping), not a directive")
    first = site.nested(options["apply"], "apply")
    then = site.nested(options["mapping"], "mapping")
    return lambda payload: then(first(payload))


def _exclude_when_null(value: Any, site: Site) -> Resolver:
    source = site.compile(value, site.where)
    return lambda payload: MISSING if (found := source(payload)) is None else _without_nulls(found)


def _without_nulls(value: Any) -> Any:
    """An object without its null fields, at any depth of objects (as Segment's
    cleanNulls: arrays, and what they hold, are kept as they are)."""
    if not isinstance(value, dict):
        return value
    return {key: _without_nulls(item) for key, item in value.items() if item is not None}


def defined(value: Any) -> Any:
    """Array items have no key to leave out: an undefined item is null (as in JSON)."""
    return None if value is MISSING else value


DIRECTIVES: dict[str, Callable[[Any, Site], Resolver]] = {
    "@path": _path,
    "@template": _template,
    "@literal": _literal,
    "@if": _if,
    "@arrayPath": _array_path,
    "@case": _case,
    "@replace": _replace,
    "@json": _json,
    "@flatten": _flatten,
    "@merge": _merge,
    "@transform": _transform,
    "@excludeWhenNull": _exclude_when_null,
}
"""Every directive Trackway knows, by name."""
