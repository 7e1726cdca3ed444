"""The OpenAPI document of the admin API."""

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_EVENTS_PARAMS = [
    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Trackway admin API", "version": "1"},
    "components": {
        "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "Source": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "type": {"type": "string"},
                    "enabled": {"type": "boolean"},
                    "write_key": {"type": "string"},
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
            "Record": {
                "type": "object",
                "description": "A stored event plus `status` (accepted|duplicate) and "
                "`position`, or a rejected payload with `error`.",
                "properties": {
                    "status": {"enum": ["accepted", "rejected", "duplicate"]},
                    "position": {"type": "integer"},
                    "error": _ERROR,
                    "payload": {},
                },
                "additionalProperties": True,
            },
        },
    },
    "security": [{"admin": []}],
    "paths": {
        "/api/v1/sources": {
            "get": {
                "summary": "List sources",
                "responses": {
                    "200": _json(
                        {"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
                        "The sources",
                    ),
                    "401": _json(_ERROR, "Missing or wrong admin token"),
                },
            }
        },
        "/api/v1/sources/{name}/events": {
            "get": {
                "summary": "Newest events of a source (accepted, rejected, duplicate)",
                "parameters": [
                    *_EVENTS_PARAMS,
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50}},
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"enum": ["accepted", "rejected", "duplicate"]},
                    },
                ],
                "responses": {
                    "200": _json(
                        {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
                        "Newest first",
                    ),
                    "400": _json(_ERROR, "Bad parameter"),
                    "401": _json(_ERROR, "Missing or wrong admin token"),
                    "404": _json(_ERROR, "No such source"),
                },
            }
        },
        "/api/v1/sql": {
            "post": {
                "summary": "Run one read-only SQL statement on a warehouse",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["sql"],
                                "properties": {
                                    "sql": {"type": "string"},
                                    "warehouse": {"type": "string", "default": "default"},
                                    "max_rows": {"type": "integer", "default": 1000},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "columns": {"type": "array", "items": {"type": "string"}},
                                "rows": {"type": "array", "items": {"type": "array"}},
                                "truncated": {"type": "boolean"},
                            },
                        },
                        "The result",
                    ),
                    "400": _json(_ERROR, "Not a read-only statement, or the query failed"),
                    "401": _json(_ERROR, "Missing or wrong admin token"),
                    "404": _json(_ERROR, "No such warehouse"),
                    "503": _json(_ERROR, "The warehouse cannot be opened"),
                },
            }
        },
        "/api/v1/sources/{name}/events/stream": {
            "get": {
                "summary": "Live stream of a source's records (Server-Sent Events, one JSON "
                "record per `data:` line)",
                "parameters": _EVENTS_PARAMS,
                "responses": {
                    "200": {
                        "description": "An event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "401": _json(_ERROR, "Missing or wrong admin token"),
                    "404": _json(_ERROR, "No such source"),
                },
            }
        },
    },
}
