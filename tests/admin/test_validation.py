"""The request checker knows every JSON Schema keyword the OpenAPI document uses for
requests."""

from typing import Any

from trackway.admin.openapi import OPENAPI
from trackway.admin.validation import KEYWORDS


def _schemas(node: Any) -> list[dict[str, Any]]:
    """Every schema of a request in the document: parameters and bodies (responses are
    not checked by the server)."""
    found: list[dict[str, Any]] = []

    def walk(schema: dict[str, Any]) -> None:
        found.append(schema)
        for sub in schema.get("properties", {}).values():
            walk(sub)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key])

    for path in node["paths"].values():
        for operation in path.values():
            for param in operation.get("parameters", []):
                walk(param["schema"])
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk(content["schema"])
    return found


def test_the_checker_knows_every_keyword_the_document_uses() -> None:
    used = {key for schema in _schemas(OPENAPI) for key in schema}
    assert used <= KEYWORDS, used - KEYWORDS
