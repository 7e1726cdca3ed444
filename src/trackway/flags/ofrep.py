"""OFREP, the OpenFeature Remote Evaluation Protocol (open-feature/protocol 0.3.0).

`POST /ofrep/v1/evaluate/flags/{key}` evaluates one flag for the request's context
(server-side providers); `POST /ofrep/v1/evaluate/flags` evaluates every flag of the
environment (client-side providers), with an ETag and `If-None-Match` → 304. Evaluation
is `trackway.flags.evaluate`, so the answers are the ConfigCat SDKs' answers.

The environment is the one whose SDK key the caller sends, as `Authorization: Bearer
<sdkKey>`, `X-API-Key: <sdkKey>` or (as the ConfigCat Proxy reads it)
`X-ConfigCat-SdkKey`: no key is 401, a key no environment has is 403. The context's
`targetingKey` is ConfigCat's User `Identifier`; its other attributes are the user's
attributes (`email`/`Email`, `country`/`Country`, and custom ones). An empty or missing
context evaluates without a user, as an SDK called without one; attributes without a
`targetingKey` are TARGETING_KEY_MISSING.
"""

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from trackway import codec
from trackway.flags.environments import Environment
from trackway.flags.evaluate import Evaluation, User
from trackway.flags.serve import FlagCache

MAX_BODY_BYTES = 64 * 1024
"""A request body (the evaluation context) larger than this is refused with 400."""

OnEvaluated = Callable[[Environment, Evaluation, User | None], Awaitable[None]]
"""Awaited after each single-flag evaluation, before the answer (flags/events.py)."""


class _Refused(Exception):
    """A request answered with an OFREP error: status and body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


def ofrep_app(cache: FlagCache, on_evaluated: OnEvaluated | None = None) -> ASGIApp:
    """The ASGI app mounted at `/ofrep/v1`."""

    async def single(request: Request) -> Response:
        key = request.path_params["key"]
        try:
            env = _environment(request, cache)
            user = _user(await _context(request), key)
        except _Refused as refused:
            return JSONResponse({"key": key, **refused.body}, refused.status)
        setting = env.settings.get(key)
        if setting is None:
            details = f"flag '{key}' was not found in environment '{env.name}'"
            return JSONResponse(
                {"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details}, 404
            )
        result = cache.evaluator(env).evaluate(key, user)
        if on_evaluated is not None:
            await on_evaluated(env, result, user)
        item = _item(result, setting)
        return JSONResponse(item, 400 if "errorCode" in item else 200)

    async def bulk(request: Request) -> Response:
        try:
            env = _environment(request, cache)
            context = await _context(request)
            user = _user(context, None)
        except _Refused as refused:
            return JSONResponse(refused.body, refused.status)
        canonical = json.dumps(context, sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(f"{cache.version(env)}\0{canonical}".encode()).hexdigest()
        etag = f'"{digest[:32]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        settings = env.settings
        flags = [
            _item(
                Evaluation(key, None, None, error=outcome)
                if isinstance(outcome, str)
                else Evaluation(key, *outcome),
                settings[key],
            )
            for key, outcome in cache.evaluator(env).evaluate_all(user)
        ]
        return Response(
            codec.dumps({"flags": flags}), media_type="application/json", headers={"ETag": etag}
        )

    return CORSMiddleware(
        Router(
            [
                Route("/evaluate/flags", bulk, methods=["POST"]),
                Route("/evaluate/flags/{key:path}", single, methods=["POST"]),
            ]
        ),
        allow_origins=["*"],
        allow_methods=["POST", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "X-API-Key",
            "X-ConfigCat-SdkKey",
            "Content-Type",
            "If-None-Match",
        ],
        expose_headers=["ETag", "Content-Length"],
        max_age=600,
    )


def _environment(request: Request, cache: FlagCache) -> Environment:
    headers = request.headers
    bearer = headers.get("authorization", "")
    key = (
        bearer[7:].strip()
        if bearer[:7].lower() == "bearer "
        else headers.get("x-api-key") or headers.get("x-configcat-sdkkey")
    )
    if not key:
        raise _Refused(
            401,
            {
                "errorCode": "GENERAL",
                "errorDetails": "send the environment's SDK key as `Authorization: Bearer"
                " <sdkKey>` or `X-API-Key: <sdkKey>`",
            },
        )
    env = cache.environment(key)
    if env is None:
        raise _Refused(
            403,
            {"errorCode": "GENERAL", "errorDetails": "no flag environment has this SDK key"},
        )
    return env


async def _context(request: Request) -> Any:
    """The request's `context` (None when absent), refusing oversized or malformed bodies."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    if not body.strip():
        return None
    try:
        data = codec.loads(bytes(body))
    except codec.DecodeError as exc:
        raise _Refused(
            400, {"errorCode": "PARSE_ERROR", "errorDetails": f"the body is not JSON: {exc}"}
        ) from exc
    if not isinstance(data, dict):
        raise _Refused(
            400,
            {"errorCode": "PARSE_ERROR", "errorDetails": 'the body is {"context": {...}}'},
        )
    return data.get("context")


def _too_large() -> _Refused:
    return _Refused(
        400,
        {
            "errorCode": "INVALID_CONTEXT",
            "errorDetails": f"the request body is larger than {MAX_BODY_BYTES} bytes",
        },
    )


def _user(context: Any, key: str | None) -> User | None:
    if context is None or context == {}:
        return None
    if not isinstance(context, dict):
        raise _Refused(
            400, {"errorCode": "INVALID_CONTEXT", "errorDetails": "`context` must be an object"}
        )
    identifier = context.get("targetingKey")
    if identifier is None:
        raise _Refused(
            400,
            {
                "errorCode": "TARGETING_KEY_MISSING",
                "errorDetails": "the context has attributes but no `targetingKey`"
                " (the user's Identifier)",
            },
        )
    if not isinstance(identifier, str):
        raise _Refused(
            400,
            {"errorCode": "INVALID_CONTEXT", "errorDetails": "`targetingKey` must be text"},
        )
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    try:
        return User.from_attributes(identifier, attributes)
    except ValueError as exc:
        raise _Refused(400, {"errorCode": "INVALID_CONTEXT", "errorDetails": str(exc)}) from exc


def _item(result: Evaluation, setting: dict[str, Any]) -> dict[str, Any]:
    """One OFREP evaluation (success, or a failure with errorCode GENERAL)."""
    if result.error is not None:
        return {"key": result.key, "errorCode": "GENERAL", "errorDetails": result.error}
    value = result.value
    kind = setting.get("t")
    if kind == 3:  # OFREP providers type-check: a double flag's value must be a JSON float
        value = float(value)
    elif kind == 2 and isinstance(value, float) and value.is_integer():
        value = int(value)
    metadata: dict[str, Any] = {"why": result.why}
    if result.rule is not None:
        metadata["matchedTargetingRule"] = result.rule + 1
    if result.option is not None:
        metadata["matchedPercentageOption"] = result.option.index + 1
    return {
        "key": result.key,
        "value": value,
        "reason": result.reason,
        # The Python provider reads `variant` unconditionally; null when the config has none.
        "variant": result.variation_id,
        "metadata": metadata,
    }
