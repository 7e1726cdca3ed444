"""The mapping directives: each checks its options once and returns a resolver.

A resolver takes the payload (the event, or an array item inside `@arrayPath`) and
returns a value, or MISSING for "undefined": a key whose value is MISSING is left out.
"""

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trackway import codec
from trackway.fql.evaluate import MISSING, lookup
from trackway.fql.lexer import as_text

Resolver = Callable[[Any], Any]
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
    if path in ("$", "$."):
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
    path = parse_path(value, site)
    return lambda payload: lookup(payload, path)


def _template(value: Any, site: Site) -> Resolver:
    if not isinstance(value, str):
        raise site.error(f"@template takes a string, got {type_name(value)}")
    # {{x}} and {{{x}}} are the same here: nothing is HTML-escaped
    pieces: list[str | tuple[str, ...]] = []
    end = 0
    for found in _PLACEHOLDER.finditer(value):
        path = parse_path((found[1] or found[2]).strip(), site)
        pieces += [value[end : found.start()], path]
        end = found.end()
    pieces.append(value[end:])

    def resolve(payload: Any) -> str:
        return "".join(p if isinstance(p, str) else _text(lookup(payload, p)) for p in pieces)

    return resolve


def _text(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    if isinstance(value, dict | list):
        return codec.dumps_text(value)
    return as_text(value)


def _literal(value: Any, site: Site) -> Resolver:
    check_json(value, site.where)
    if isinstance(value, dict | list):
        # a fresh copy per event: whoever receives the payload may change it
        return lambda payload: copy.deepcopy(value)
    return lambda payload: value


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
    options = _options(value, site, ("value", "pattern"), ("replacement", "global", "ignorecase"))
    pattern = _option(options, "pattern", str, None, site)
    if not pattern:
        raise site.error("pattern must not be empty")
    replacement = _option(options, "replacement", str, "", site)
    count = 0 if _option(options, "global", bool, True, site) else 1
    flags = re.IGNORECASE if _option(options, "ignorecase", bool, False, site) else 0
    regex = re.compile(re.escape(pattern), flags)
    source = site.nested(options["value"], "value")

    def resolve(payload: Any) -> Any:
        found = source(payload)
        if not isinstance(found, str | int | float):  # bool is an int: "true"/"false"
            return found
        # a function, so that backslashes in the replacement stay literal
        return regex.sub(lambda _: replacement, as_text(found), count=count)

    return resolve


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
    return lambda payload: MISSING if (found := source(payload)) is None else found


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
