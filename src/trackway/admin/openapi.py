"""The OpenAPI document of the admin API.

It is also what the server checks each request against (`trackway.admin.validation`):
a route is documented here, query parameters and bodies with their exact schemas
(bodies refuse unknown fields: `additionalProperties: false`), and every status it can
answer.
"""

from typing import Any

PREFIX = "/api/v1"
"""Where the admin API is mounted; the paths below include it."""

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_OBJECT = {"type": "object", "additionalProperties": True}
_UNAUTHORIZED = {"401": _json(_ERROR, "Missing or wrong admin token")}
_INVALID = {"400": _json(_ERROR, "Invalid parameter or body (the message says which)")}
_DESTINATION_ERRORS = {
    **_INVALID,
    **_UNAUTHORIZED,
    "404": _json(_ERROR, "No such destination"),
    "409": _json(_ERROR, "The destination's settings or secrets are not usable"),
}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 10_000}
_ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}  # a 64-bit row id
_DURATION = r"^\s*[0-9]{1,9}(\.[0-9]{1,6})?[smhdSMHD]?\s*$"


def _body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object body of exactly these fields."""
    return {
        "type": "object",
        "required": list(required),
        "properties": properties,
        "additionalProperties": False,
    }


def _operation(
    summary: str,
    ok: str,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [*_NAME, *(parameters or [])],
        "responses": {"200": _json(_OBJECT, ok), **_DESTINATION_ERRORS},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
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
                **_INVALID,
                **_UNAUTHORIZED,
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
                _query(
                    "window",
                    {"type": "string", "pattern": _DURATION, "default": "24h"},
                    "Period counted: seconds, or a number with s, m, h or d",
                ),
                _query(
                    "errors",
                    {"type": "integer", "minimum": 0, "maximum": 100, "default": 5},
                    "Errors shown",
                ),
            ],
        )
    },
    "/api/v1/destinations/{name}/delivery/series": {
        "get": _operation(
            "Event delivery over time, every action together, for a chart (about 60 points)",
            "`bucket_s` and the points, oldest first: counts and p50/p95 per bucket",
            [
                _query(
                    "window",
                    {"type": "string", "pattern": _DURATION, "default": "24h"},
                    "Period shown: seconds, or a number with s, m, h or d",
                )
            ],
        )
    },
    "/api/v1/destinations/{name}/alerts": {
        "get": _operation(
            "Alert rules, whether an alert is open, and the alerts and recoveries",
            "`rules`, `alerting` and the `history`, newest first",
            [_query("limit", {**_LIMIT, "default": 50}, "How many changes")],
        )
    },
    "/api/v1/destinations/{name}/enabled": {
        "put": _operation(
            "Turn the destination on or off (as `enabled:` in the workspace file does)",
            "The new state and the workspace file lines that keep it",
            body=_body({"enabled": {"type": "boolean"}}, ("enabled",)),
        )
    },
    "/api/v1/destinations/{name}/test": {
        "post": _operation(
            "Event tester: one event through the subscriptions and mappings (no filters)",
            "Per matched action: payload, request, response, status",
            body=_body(
                {
                    "event": _OBJECT,
                    "dry_run": {"type": "boolean", "default": False},
                    "source": {"type": "string", "description": "Test as sent to this source"},
                },
                ("event",),
            ),
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
            body=_body(
                {
                    "since": {
                        "type": "string",
                        "minLength": 1,
                        "description": "An ISO 8601 time with an offset, or a duration ago",
                    }
                },
                ("since",),
            ),
        )
    },
    "/api/v1/destinations/{name}/dead-letters": {
        "get": _operation(
            "The newest dead letters (discarded or out of retries)",
            "The total and the newest ones",
            [_query("limit", {**_LIMIT, "default": 20}, "How many")],
        )
    },
    "/api/v1/destinations/{name}/resend": {
        "post": _operation(
            "Re-send dead letters (all, or `ids`): back into the retry schedule, due now",
            "How many were re-sent",
            body=_body({"ids": {"type": "array", "items": _ID}}),
            body_required=False,
        )
    },
}

_UNAVAILABLE = {"503": _json(_ERROR, "The warehouse cannot be opened or has nothing loaded yet")}


def _experiment_results(summary: str, ok: str) -> dict[str, Any]:
    """An operation computing an experiment's results in its warehouse, as of a time."""
    return {
        "get": {
            "summary": summary,
            "parameters": [
                *_NAME,
                _query(
                    "as_of",
                    {"type": "string"},
                    "Results as they were at this time: ISO 8601 with an offset, or a"
                    " duration ago such as 24h (default: now)",
                ),
            ],
            "responses": {
                "200": _json(_OBJECT, ok),
                "400": _json(_ERROR, "An as_of that is no time, or the query failed"),
                **_UNAUTHORIZED,
                "404": _json(_ERROR, "No such experiment, or no such warehouse"),
                **_UNAVAILABLE,
            },
        }
    }


_EXPERIMENT_PATHS: dict[str, Any] = {
    "/api/v1/experiments": {
        "get": {
            "summary": "The experiments' definitions, by name (`trackway experiments list --json`)",
            "responses": {
                "200": _json({"type": "array", "items": _OBJECT}, "The experiments"),
                **_INVALID,
                **_UNAUTHORIZED,
            },
        }
    },
    "/api/v1/experiments/{name}": {
        "get": {
            "summary": "An experiment's definition (`trackway experiments show NAME --json`)",
            "parameters": _NAME,
            "responses": {
                "200": _json(_OBJECT, "The experiment as declared"),
                **_INVALID,
                **_UNAUTHORIZED,
                "404": _json(_ERROR, "No such experiment"),
            },
        }
    },
    "/api/v1/experiments/{name}/results": _experiment_results(
        "An experiment's results computed in its warehouse: units, SRM, exclusions, per"
        " metric and variation the statistics, the timeline"
        " (`trackway experiments results NAME --json`)",
        "The results",
    ),
    "/api/v1/experiments/{name}/timeline": _experiment_results(
        "An experiment's cumulative units, conversions and conversion rate per variation"
        " and goal, per hour or day (the `timeline` of its results)",
        "`bucket` (hour or day) and `points`",
    ),
    "/api/v1/goals": {
        "get": {
            "summary": "Every track, page and screen event name loaded, each a goal:"
            " first and last seen, volume (`trackway experiments goals --json`)",
            "parameters": [
                _query("source", {"type": "string"}, "The source (default: the oldest)"),
                _query("warehouse", {"type": "string", "default": "default"}, "The warehouse"),
            ],
            "responses": {
                "200": _json({"type": "array", "items": _OBJECT}, "Most frequent first"),
                "400": _json(_ERROR, "No such source, or the query failed"),
                **_UNAUTHORIZED,
                "404": _json(_ERROR, "No such warehouse"),
                **_UNAVAILABLE,
            },
        }
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
        "/api/v1/overview": {
            "get": {
                "summary": "The workspace at a glance: the last hour per source, the"
                " destinations' delivery, the warehouses' lag, the syncs' last runs",
                "responses": {
                    "200": _json(_OBJECT, "The overview (the dashboard's Overview page)"),
                    **_INVALID,
                    **_UNAUTHORIZED,
                },
            }
        },
        "/api/v1/sources": {
            "get": {
                "summary": "List sources",
                "responses": {
                    "200": _json(
                        {"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
                        "The sources",
                    ),
                    **_INVALID,
                    **_UNAUTHORIZED,
                },
            }
        },
        "/api/v1/sources/{name}/events": {
            "get": {
                "summary": "Newest events of a source (accepted, rejected, duplicate)",
                "parameters": [
                    *_NAME,
                    {"name": "limit", "in": "query", "schema": {**_LIMIT, "default": 50}},
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
                    **_INVALID,
                    **_UNAUTHORIZED,
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
                            "schema": _body(
                                {
                                    "sql": {"type": "string"},
                                    "warehouse": {"type": "string", "default": "default"},
                                    "max_rows": {**_LIMIT, "default": 1000},
                                    "format": {"enum": ["json", "csv"], "default": "json"},
                                },
                                ("sql",),
                            )
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
                                "elapsed_ms": {"type": "number"},
                            },
                        },
                        "The result, or with `format: csv` the rows as a CSV download",
                    ),
                    "400": _json(
                        _ERROR, "Invalid body, not a read-only statement, or the query failed"
                    ),
                    **_UNAUTHORIZED,
                    "404": _json(_ERROR, "No such warehouse"),
                    "503": _json(_ERROR, "The warehouse cannot be opened"),
                },
            }
        },
        "/api/v1/sources/{name}/events/stream": {
            "get": {
                "summary": "Live stream of a source's records (Server-Sent Events, one JSON "
                "record per `data:` line)",
                "parameters": _NAME,
                "responses": {
                    "200": {
                        "description": "An event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_INVALID,
                    **_UNAUTHORIZED,
                    "404": _json(_ERROR, "No such source"),
                },
            }
        },
        "/api/v1/warehouses": {
            "get": {
                "summary": "Each warehouse's status: last load, lag, tables, rejected values",
                "responses": {
                    "200": _json({"type": "array", "items": _OBJECT}, "The warehouses"),
                    **_INVALID,
                    **_UNAUTHORIZED,
                },
            }
        },
        "/api/v1/warehouses/{name}/tables": {
            "get": {
                "summary": "A warehouse's tables: row counts (estimated), columns and types",
                "parameters": _NAME,
                "responses": {
                    "200": _json(_OBJECT, "The tables"),
                    **_INVALID,
                    **_UNAUTHORIZED,
                    "404": _json(_ERROR, "No such warehouse"),
                    "503": _json(_ERROR, "The warehouse cannot be opened"),
                },
            }
        },
        **_DESTINATION_PATHS,
        **_EXPERIMENT_PATHS,
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
