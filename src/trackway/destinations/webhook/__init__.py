"""Webhook: any HTTP endpoint gets the events as JSON, one per request (or, with a
subscription's `batch: true`, in batches).

Modelled on Segment's Webhook (Actions): one action, `send`, whose fields are the URL,
the method, extra headers and the data (the whole event unless mapped). With a shared
secret each request is signed: `X-Signature` is the hex HMAC-SHA1 of the request body.
"""

import hashlib
import hmac
import re
from typing import Any

from trackway import codec
from trackway.destinations.framework import (
    Action,
    Definition,
    Discard,
    Field,
    FieldType,
    InvalidSettings,
    Preset,
    Setting,
    SettingType,
    SettingValues,
)
from trackway.destinations.transport import Request

ALL_EVENTS = (
    'type = "track" or type = "identify" or type = "page" or type = "screen"'
    ' or type = "group" or type = "alias"'
)
_METHODS = ("POST", "PUT", "PATCH")
_SIGNATURE = "x-signature"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")


def _perform(payload: dict[str, Any], settings: SettingValues) -> Request:
    return _request(payload, payload.get("data"), settings)


def _perform_batch(payloads: list[dict[str, Any]], settings: SettingValues) -> Request:
    """One request with the JSON array of the events' data (the framework batches only
    payloads with equal url, method and headers: `batch_keys`)."""
    return _request(payloads[0], [payload.get("data") for payload in payloads], settings)


def _request(payload: dict[str, Any], data: Any, settings: SettingValues) -> Request:
    url = payload.get("url") or settings.get("url")
    if not url:
        raise InvalidSettings("no URL: set the 'url' setting or map the 'url' field")
    body = codec.dumps(data)
    custom = _headers(payload.get("headers") or {})
    names = {name.lower() for name in custom}
    headers = {} if "content-type" in names else {"content-type": "application/json"}
    headers.update(custom)
    secret = settings.get("shared_secret")
    if secret:
        headers = {name: value for name, value in headers.items() if name.lower() != _SIGNATURE}
        headers["X-Signature"] = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return Request(payload["method"], url, headers, body)


def _headers(headers: dict[str, Any]) -> dict[str, str]:
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            raise Discard(f"The header name {name!r} is not a valid HTTP header name.")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise Discard(
                f"The value of header {name!r} must be a string of printable ASCII characters."
            )
    return headers


def _authentication(settings: SettingValues) -> None:
    """Nothing to ask the endpoint; only the URL setting is checked."""
    url = settings.get("url")
    if url is not None and not url.startswith(("http://", "https://")):
        raise InvalidSettings(f"setting 'url' must be an http:// or https:// URL, got {url!r}")


SEND = Action(
    name="send",
    title="Send an event",
    fields=(
        Field(
            "url",
            "URL to deliver data to; when unmapped, the 'url' setting. Map it with"
            " @template to make it depend on the event.",
        ),
        Field("method", "HTTP method to use.", required=True, default="POST", choices=_METHODS),
        Field("headers", "HTTP headers to send with each request.", FieldType.OBJECT),
        Field(
            "data",
            "Payload to deliver to the URL (JSON-encoded).",
            FieldType.OBJECT,
            default={"@path": "$"},
        ),
    ),
    perform=_perform,
    perform_batch=_perform_batch,
    default_subscription=ALL_EVENTS,
    batch_keys=("url", "method", "headers"),
    # as Segment's Webhook (Actions), whose receivers expect one JSON object per request
    batch_by_default=False,
)

DEFINITION = Definition(
    name="webhook",
    title="Webhook",
    description="Send events as JSON to any HTTP endpoint.",
    settings=(
        Setting(
            "url",
            "The URL events are sent to, unless a mapping sets the 'url' field.",
        ),
        Setting(
            "shared_secret",
            "If set, each request carries an 'X-Signature' header: the hex-encoded"
            " HMAC-SHA1 of the request body with this secret.",
            SettingType.SECRET,
        ),
    ),
    actions=(SEND,),
    presets=(Preset("Send all events", "send", ALL_EVENTS),),
    authentication=_authentication,
)
