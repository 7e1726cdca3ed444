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
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from trackway import codec
from trackway.flags.asgi import JSON, answer, error
from trackway.flags.environments import Environment
from trackway.flags.evaluate import Evaluation, Evaluator, Outcome, User
from trackway.flags.serve import FlagCache

MAX_BODY_BYTES = 64 * 1024
"""A request body (the evaluation context) larger than this is refused with 400."""

OnEvaluated = Callable[[Environment, Evaluation, User | None], Awaitable[None]]
"""Awaited after each single-flag evaluation, before the answer (flags/events.py)."""

_BULK = "/evaluate/flags"
_SINGLE = "/evaluate/flags/"
# CORS on every answer (browser providers read the ETag); the preflight allows what they send.
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"ETag, Content-Length"),
]
_PREFLIGHT = [
    *_CORS,
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"Authorization, X-API-Key, X-ConfigCat-SdkKey, Content-Type, If-None-Match",
    ),
    (b"access-control-max-age", b"600"),
]
_ANSWER = [*JSON, *_CORS]


class _Refused(Exception):
    """A request answered with an OFREP error: status and body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


class _Items:
    """The OFREP items of one prepared config, by outcome: an item depends only on the
    flag, the matched rule and percentage option and the bucket (shown in `why`), so
    users with the same outcome share one (at most flags x (rules + 1) x 100)."""

    def __init__(self, evaluator: Evaluator, settings: dict[str, Any]) -> None:
        self.evaluator = evaluator
        self._settings = settings
        self._items: dict[tuple[str, int | None, int | None, int | None], dict[str, Any]] = {}

    def item(self, key: str, outcome: Outcome | str) -> dict[str, Any]:
        if isinstance(outcome, str):
            return _item(Evaluation(key, None, None, error=outcome), self._settings[key])
        option = outcome[3]
        index = (
            (key, outcome[2], None, None)
            if option is None
            else (key, outcome[2], option.index, option.bucket)
        )
        found = self._items.get(index)
        if found is None:
            found = _item(Evaluation(key, *outcome), self._settings[key])
            self._items[index] = found
        return found


def ofrep_app(cache: FlagCache, on_evaluated: OnEvaluated | None = None) -> ASGIApp:
    """The ASGI app mounted at `/ofrep/v1` (a bare callable: `flags.asgi`)."""
    items: dict[str, _Items] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path != _BULK and not path.startswith(_SINGLE):
            body = error("not_found", f"nothing at {scope['path']} (see / for what is here)")
            await answer(send, 404, _ANSWER, body)
            return
        method = scope["method"]
        if method == "OPTIONS":  # a browser provider's CORS preflight
            await answer(send, 200, _PREFLIGHT)
            return
        if method != "POST":
            body = error("method_not_allowed", f"{method} is not allowed on {scope['path']}")
            await answer(send, 405, [*_ANSWER, (b"allow", b"POST, OPTIONS")], body)
            return
        headers = dict(scope["headers"])
        if path == _BULK:
            await bulk(headers, receive, send)
        else:
            await single(path[len(_SINGLE) :], headers, receive, send)

    async def single(key: str, headers: dict[bytes, bytes], receive: Receive, send: Send) -> None:
        try:
            env = _environment(headers, cache)
            user = _user(await _context(headers, receive), key)
        except _Refused as refused:
            await _json(send, refused.status, {"key": key, **refused.body})
            return
        setting = env.settings.get(key)
        if setting is None:
            details = f"flag '{key}' was not found in environment '{env.name}'"
            body = {"key": key, "errorCode": "FLAG_NOT_FOUND", "errorDetails": details}
            await _json(send, 404, body)
            return
        result = cache.evaluator(env).evaluate(key, user)
        if on_evaluated is not None:
            await on_evaluated(env, result, user)
        item = _item(result, setting)
        await _json(send, 400 if "errorCode" in item else 200, item)

    async def bulk(headers: dict[bytes, bytes], receive: Receive, send: Send) -> None:
        try:
            env = _environment(headers, cache)
            context = await _context(headers, receive)
            user = _user(context, None)
        except _Refused as refused:
            await _json(send, refused.status, refused.body)
            return
        canonical = codec.dumps_sorted(context)
        digest = hashlib.sha256(f"{cache.version(env)}\0".encode() + canonical).hexdigest()
        etag = f'"{digest[:32]}"'.encode()
        if headers.get(b"if-none-match") == etag:
            await answer(send, 304, [(b"etag", etag), *_CORS])
            return
        evaluator = cache.evaluator(env)
        known = items.get(env.sdk_key)
        if known is None or known.evaluator is not evaluator:
            known = items[env.sdk_key] = _Items(evaluator, env.settings)
        flags = [known.item(key, outcome) for key, outcome in evaluator.evaluate_all(user)]
        await answer(send, 200, [(b"etag", etag), *_ANSWER], codec.dumps({"flags": flags}))

    return app


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    await answer(send, status, _ANSWER, codec.dumps(body))


def _environment(headers: dict[bytes, bytes], cache: FlagCache) -> Environment:
    bearer = headers.get(b"authorization", b"").decode("latin-1")
    key = (
        bearer[7:].strip()
        if bearer[:7].lower() == "bearer "
        else (headers.get(b"x-api-key") or headers.get(b"x-configcat-sdkkey") or b"").decode(
            "latin-1"
        )
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


async def _context(headers: dict[bytes, bytes], receive: Receive) -> Any:
    """The request's `context` (None when absent), refusing oversized or malformed bodies."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
        if not message.get("more_body", False):
            break
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
