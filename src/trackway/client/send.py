"""Build, validate and send one event, as `trackway send` does."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from trackway import codec
from trackway.spec.errors import Rejection
from trackway.spec.message import decode_message

DEFAULT_DATA_PLANE = "http://127.0.0.1:8088"
TIMEOUT_S = 10.0


class ClientError(Exception):
    """The event was not sent, or the endpoint refused it; the message says why."""


@dataclass(frozen=True)
class Call:
    """What the user asked to send; `fields` holds the call's own fields (event, name...)."""

    type: str
    user_id: str | None
    anonymous_id: str | None
    fields: dict[str, Any]
    timestamp: str | None = None
    message_id: str | None = None


_APPLIES = {
    "event": ("--event", {"track"}),
    "name": ("--name", {"page", "screen"}),
    "groupId": ("--group-id", {"group"}),
    "previousId": ("--previous-id", {"alias"}),
    "properties": ("--properties", {"track", "page", "screen"}),
    "traits": ("--traits", {"identify", "group"}),
}


def build(call: Call) -> dict[str, Any]:
    """The request body; raises ClientError with the same rules the server applies."""
    for key, value in call.fields.items():
        option, types = _APPLIES.get(key, ("", {call.type}))
        if value is not None and call.type not in types:
            raise ClientError(f"not sent: {option} does not apply to {call.type} calls")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {
        "type": call.type,
        "messageId": call.message_id or str(uuid.uuid4()),
        "timestamp": call.timestamp or now,
        "sentAt": now,
        "context": {"library": {"name": "trackway-cli", "version": _version()}},
        **{k: v for k, v in call.fields.items() if v is not None and k != "context"},
    }
    if call.user_id is not None:
        body["userId"] = call.user_id
    if call.anonymous_id is not None:
        body["anonymousId"] = call.anonymous_id
    if call.fields.get("context"):
        body["context"] = {**body["context"], **call.fields["context"]}
    outcome = decode_message(codec.dumps(body), call.type)
    if isinstance(outcome, Rejection):
        raise ClientError(f"not sent: {outcome.message}")
    return body


def send(body: dict[str, Any], write_key: str, data_plane: str) -> None:
    """POST one event; raises ClientError naming the server's error code and message."""
    url = f"{data_plane.rstrip('/')}/v1/{body['type']}"
    try:
        response = httpx.post(
            url,
            content=codec.dumps(body),
            auth=(write_key, ""),
            timeout=TIMEOUT_S,
            headers={"Content-Type": "application/json"},
        )
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach {url}: {exc}{v1_hint(data_plane)}") from exc
    if response.status_code != 200:
        raise ClientError(
            f"{url} answered {response.status_code}: {describe(response)}{v1_hint(data_plane)}"
        )


def describe(response: httpx.Response) -> str:
    """The server's `code: message`, or what the answer was when it is not Segment's JSON."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and "code" in payload:
        return f"{payload['code']}: {payload.get('message', '')}"
    kind = response.headers.get("content-type", "no content type")
    return f"a non-Segment answer ({kind}, {len(response.content)} bytes)"


def v1_hint(data_plane: str) -> str:
    """A hint for a data plane given with the `/v1` that the paths add themselves."""
    base = data_plane.rstrip("/")
    if not base.endswith("/v1"):
        return ""
    return f" (the data plane is an origin without /v1: try --data-plane {base[:-3]})"


def _version() -> str:
    from trackway import __version__

    return __version__
