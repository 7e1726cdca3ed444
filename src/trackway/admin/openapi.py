"""The OpenAPI document of the admin API."""

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_EVENTS_PARAMS = [
    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
]

_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_OBJECT = {"type": "object", "additionalProperties": True}
_DESTINATION_ERRORS = {
    "401": _json(_ERROR, "Missing or wrong admin token"),
    "404": _json(_ERROR, "No such destination"),
}


def _operation(
    summary: str,
    ok: str,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [*_NAME, *(parameters or [])],
        "responses": {
            "200": _json(_OBJECT, ok),
            "400": _json(_ERROR, "Invalid parameter or body"),
            **_DESTINATION_ERRORS,
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_DESTINATION_PATHS: dict[str, Any] = {
    "/api/v1/destinations": {
        "get": {
            "summary": "List destinations: lag behind the log, retries waiting, dead letters",
            "responses": {
                "200": _json({"type": "array", "items": _OBJECT}, "The destinations"),
                "401": _json(_ERROR, "Missing or wrong admin token"),
            },
        }
    },
    "/api/v1/destinations/{name}": {
        "get": _operation("A destination's declaration (secret settings masked)", "It")
    },
    "/api/v1/destinations/{name}/delivery": {
        "get": _operation(
            "Event delivery: counts and latency per action, last errors with samples, alerts",
            "The delivery view",
            [
                _query("window", {"type": "string", "default": "24h"}, "Period counted"),
                _query("errors", {"type": "integer", "default": 5}, "Errors shown"),
            ],
        )
    },
    "/api/v1/destinations/{name}/test": {
        "post": _operation(
            "Event tester: one event through the subscriptions and mappings (no filters)",
            "Per matched action: payload, request, response, status",
            body={
                "type": "object",
                "required": ["event"],
                "properties": {
                    "event": _OBJECT,
                    "dry_run": {"type": "boolean"},
                    "source": {"type": "string", "description": "Test as sent to this source"},
                },
            },
        )
    },
    "/api/v1/destinations/{name}/authentication": {
        "post": _operation(
            "Test the destination's credentials (its authentication test)",
            "`ok`, a message, and the request and response when one was sent",
        )
    },
    "/api/v1/destinations/{name}/replay": {
        "post": _operation(
            "Re-deliver the log from a time on (moves the destination's cursor)",
            "The new position and how many events it re-delivers",
            body={
                "type": "object",
                "required": ["since"],
                "properties": {"since": {"type": "string"}},
            },
        )
    },
    "/api/v1/destinations/{name}/dead-letters": {
        "get": _operation(
            "The newest dead letters (discarded or out of retries)",
            "The total and the newest ones",
            [_query("limit", {"type": "integer", "default": 20}, "How many")],
        )
    },
    "/api/v1/destinations/{name}/resend": {
        "post": _operation(
            "Re-send dead letters (all, or `ids`): back into the retry schedule, due now",
            "How many were re-sent",
            body={
                "type": "object",
                "properties": {"ids": {"type": "array", "items": {"type": "integer"}}},
            },
        )
    },
}

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
        **_DESTINATION_PATHS,
    },
}


def _delete(summary: str, missing: str, conflict: str | None = None) -> dict[str, Any]:
    responses = {
        "200": _json(
            {
                "type": "object",
                "properties": {
                    "deleted": {"type": "string"},
                    "name": {"type": "string"},
                    "message": {"type": "string"},
                    "purged": {"type": "integer"},
                },
            },
            "Deleted: what and a message (`purged`: how many dead letters)",
        ),
        "401": _json(_ERROR, "Missing or wrong admin token"),
        "404": _json(_ERROR, missing),
    }
    if conflict is not None:
        responses["409"] = _json(_ERROR, conflict)
    return {"delete": {"summary": summary, "parameters": _NAME, "responses": responses}}


_DELETE_PATHS = {
    "/api/v1/sources/{name}": _delete(
        "Delete a source: its write keys stop working at once; its events stay in the log",
        "No such source",
        "A destination (`sources`) or a sync (`target.source`) uses it (`in_use`)",
    ),
    "/api/v1/destinations/{name}": _delete(
        "Delete a destination: its dead letters (and waiting retries) stay until purged",
        "No such destination",
    ),
    "/api/v1/destinations/{name}/dead-letters": _delete(
        "Purge the dead letters of a destination (a deleted one's too)",
        "No such destination, and no dead letters under that name",
    ),
    "/api/v1/models/{name}": _delete(
        "Delete a model", "No such model", "A sync reads it (`in_use`)"
    ),
    "/api/v1/syncs/{name}": _delete(
        "Delete a sync: no longer scheduled; its run history stays",
        "No such sync",
        "It is running (`in_use`)",
    ),
}
for _path, _operations in _DELETE_PATHS.items():
    OPENAPI["paths"].setdefault(_path, {}).update(_operations)
