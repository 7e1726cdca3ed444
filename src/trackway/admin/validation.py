"""Checks a request against its operation in the admin API's OpenAPI document.

The document (`trackway.admin.openapi.OPENAPI`) is the one source: every route's query
parameters and JSON body are checked against the schemas it publishes, so the server
and the spec cannot disagree. A route declares nothing but its operation there. The
checker knows the part of JSON Schema the document uses (`KEYWORDS`); a test fails
when the document uses another keyword.
"""

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from trackway import codec
from trackway.admin.openapi import OPENAPI

KEYWORDS = frozenset(
    (
        "type",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minimum",
        "maximum",
        "minLength",
        "pattern",
        "default",
        "description",
        "$ref",
    )
)
"""The JSON Schema keywords the checker applies (`default` and `description` only say)."""

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


class InvalidRequest(ValueError):
    """A request that its operation's schemas refuse; the message says where and why."""


@dataclass(frozen=True)
class Checked:
    """A request's query parameters and JSON body, valid and with defaults filled in."""

    query: dict[str, Any]
    body: dict[str, Any]


def check_request(operation: dict[str, Any], request: Request, body: bytes) -> Checked:
    """The checked query and body of `request`; raises `InvalidRequest`."""
    return Checked(_query(operation, request), _body(operation, body))


def checked(request: Request) -> Checked:
    """What `check_request` found for this request (the admin API checks each one)."""
    found = request.state.checked
    assert isinstance(found, Checked)
    return found


def _query(operation: dict[str, Any], request: Request) -> dict[str, Any]:
    params = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
    unknown = sorted(set(request.query_params) - set(params))
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter(s): {', '.join(unknown)}; "
            f"expected {', '.join(sorted(params)) or 'none'}"
        )
    values: dict[str, Any] = {}
    for name, param in params.items():
        schema = param["schema"]
        texts = request.query_params.getlist(name)
        if len(texts) > 1:
            raise InvalidRequest(f"query parameter {name} is given {len(texts)} times")
        if not texts:
            if "default" in schema:
                values[name] = schema["default"]
            continue
        value = _from_text(texts[0], schema, name)
        problem = _problem(schema, value, name)
        if problem:
            raise InvalidRequest(problem)
        values[name] = value
    return values


def _from_text(text: str, schema: dict[str, Any], name: str) -> Any:
    if schema.get("type") != "integer":
        return text
    if not re.fullmatch(r"[+-]?\d{1,18}", text):
        raise InvalidRequest(f"query parameter {name} must be a whole number")
    return int(text)


def _body(operation: dict[str, Any], body: bytes) -> dict[str, Any]:
    declared = operation.get("requestBody")
    if declared is None:
        if body.strip():
            raise InvalidRequest("this operation takes no request body")
        return {}
    schema = declared["content"]["application/json"]["schema"]
    if not body.strip() and not declared.get("required"):
        return {}
    try:
        value = codec.loads(body)
    except codec.DecodeError as exc:
        raise InvalidRequest(f"the body is not JSON: {exc}") from None
    problem = _problem(schema, value, "$")
    if problem:
        raise InvalidRequest(problem)
    assert isinstance(value, dict)  # every documented body is an object
    defaults = {
        name: prop["default"]
        for name, prop in schema.get("properties", {}).items()
        if "default" in prop and name not in value
    }
    return {**defaults, **_whole(schema, value)}


def _problem(schema: dict[str, Any], value: Any, path: str) -> str | None:
    """Why `value` at `path` does not fit `schema`, or None when it does."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _problem(OPENAPI["components"]["schemas"][name], value, path)
    kind = schema.get("type")
    if kind is not None and not _is(value, kind):
        return f"{path} must be {_a(kind)}, not {_kind_of(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path} must be one of {', '.join(map(str, schema['enum']))}"
    if isinstance(value, dict):
        return _object_problem(schema, value, path)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problem = _problem(schema["items"], item, f"{path}[{index}]")
            if problem:
                return problem
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path} must be at least {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path} must be at most {schema['maximum']}"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{path} must have at least {schema['minLength']} character(s)"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{path} must match {schema['pattern']}"
    return None


def _object_problem(schema: dict[str, Any], value: dict[str, Any], path: str) -> str | None:
    properties: dict[str, Any] = schema.get("properties", {})
    missing = [name for name in schema.get("required", []) if name not in value]
    if missing:
        return f"{path} is missing {', '.join(missing)}"
    extra = schema.get("additionalProperties", True)
    if extra is False:
        unknown = sorted(name for name in value if name not in properties)
        if unknown:
            fields = ", ".join(repr(name) for name in unknown)
            return f"{path} has unknown field(s) {fields}; expected {', '.join(properties)}"
    for name, item in value.items():
        sub = properties.get(name, extra if isinstance(extra, dict) else None)
        if sub is not None:
            problem = _problem(sub, item, f"{path}.{name}")
            if problem:
                return problem
    return None


def _is(value: Any, kind: str | list[str]) -> bool:
    kinds = [kind] if isinstance(kind, str) else kind
    for one in kinds:
        if isinstance(value, bool) and one in ("integer", "number"):
            continue
        if isinstance(value, _TYPES[one]):
            return True
        if one == "integer" and isinstance(value, float) and value.is_integer():
            return True  # JSON Schema: 5.0 is an integer
    return False


def _whole(schema: dict[str, Any], value: Any) -> Any:
    """`value` with the integers its schema declares as ints (JSON may write `5.0`)."""
    if isinstance(value, float) and schema.get("type") == "integer":
        return int(value)
    if isinstance(value, list) and "items" in schema:
        return [_whole(schema["items"], item) for item in value]
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {k: _whole(properties.get(k, {}), v) for k, v in value.items()}
    return value


def _a(kind: str | list[str]) -> str:
    kinds = [kind] if isinstance(kind, str) else kind
    return " or ".join(("an " if k[0] in "aeiou" else "a ") + k for k in kinds)


def _kind_of(value: Any) -> str:
    for name, types in _TYPES.items():
        if isinstance(value, types) and not (isinstance(value, bool) and name != "boolean"):
            return _a(name)
    return type(value).__name__
