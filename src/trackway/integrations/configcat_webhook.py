"""The ConfigCat webhook source: signed change notifications become track events.

ConfigCat calls `/v1/webhooks/configcat/<write key>` with the body template in
docs/flag-events.md. Each call is verified (HMAC-SHA256 over webhook id + timestamp
+ body, several signatures during key rotation, at most 5 minutes old) and becomes one
**Feature Flag Changed** track event. Its messageId is derived from the webhook id, so
ConfigCat's retries of one call are deduplicated into one event.
"""

import base64
import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.datastructures import Headers

from trackway.ingest.handler import WebhookParser
from trackway.spec.errors import IngestError
from trackway.spec.message import Message, raw_object
from trackway.storage.base import StateStore
from trackway.storage.records import Source

EVENT = "Feature Flag Changed"
SETTINGS_KIND = "configcat"
MAX_AGE_S = 300
"""A call older (or newer) than this is refused, which stops replays."""

_ID = "x-configcat-webhook-id"
_TIMESTAMP = "x-configcat-webhook-timestamp"
_SIGNATURE = "x-configcat-webhook-signature-v1"
_CHANGED_BY = re.compile(
    r"^\s*(?P<name>.*?)\s*[(<\[]\s*(?P<email>[^()<>\[\]\s]+@[^()<>\[\]\s]+)\s*[)>\]]\s*$"
)
_NAMESPACE = uuid.UUID("5b0c5d0e-7a52-4b8e-9a43-2f1c33b8f6a1")


class SourceSettings(msgspec.Struct, forbid_unknown_fields=True):
    """What a ConfigCat source knows beyond its write key."""

    signing_keys: list[str] = []
    product_id: str | None = None
    product_name: str | None = None


class Change(msgspec.Struct, omit_defaults=True):
    """One entry of `##ChangeDetails##`. Trackway's own flag changes also carry the
    setting as served (config_v6) before and after the change; ConfigCat's do not."""

    setting_key: str = msgspec.field(name="settingKey")
    event: str | None = None
    details: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class WebhookBody(msgspec.Struct, rename="camel", omit_defaults=True):
    """The body the documented template produces; unknown fields are ignored."""

    config_id: str | None = None
    config_name: str | None = None
    environment_id: str | None = None
    environment_name: str | None = None
    url: str | None = None
    change_notes: str | None = None
    changed_by: str | None = None
    change_details: list[Change] = []


_body_decoder = msgspec.json.Decoder(WebhookBody)


def load_settings(store: StateStore, source_name: str) -> SourceSettings:
    """The stored settings of a ConfigCat source (empty when none were set)."""
    spec = store.objects(SETTINGS_KIND).get(source_name, {})
    return msgspec.convert(spec, SourceSettings)


def save_settings(store: StateStore, source_name: str, settings: SourceSettings) -> None:
    store.put_object(SETTINGS_KIND, source_name, msgspec.to_builtins(settings))


def verify(headers: Headers, body: bytes, keys: list[str], now: datetime) -> tuple[str, int]:
    """Check the signature headers; returns (webhook id, timestamp) or raises IngestError."""
    webhook_id = headers.get(_ID, "")
    stamp = headers.get(_TIMESTAMP, "")
    signatures = headers.get(_SIGNATURE, "")
    if not (webhook_id and stamp and signatures):
        raise IngestError(
            "missing_signature",
            "unsigned call: X-ConfigCat-Webhook-ID, -Timestamp and -Signature-V1 are required",
            401,
        )
    if not keys:
        raise IngestError(
            "no_signing_key",
            "this source has no signing key; set one with"
            " `trackway sources configure NAME --signing-key KEY`",
            401,
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise IngestError("invalid_timestamp", f"not a unix timestamp: {stamp!r}") from None
    age = now.timestamp() - timestamp
    if abs(age) > MAX_AGE_S:
        raise IngestError(
            "stale_timestamp",
            f"the call was signed {age:.0f} s ago; calls older than {MAX_AGE_S} s are refused",
            401,
        )
    message = webhook_id.encode() + stamp.encode() + body
    expected = [
        base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()) for key in keys
    ]
    given = [s.strip().encode() for s in signatures.split(",") if s.strip()]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise IngestError("invalid_signature", "no signature matches a signing key", 401)
    return webhook_id, timestamp


def parser(store: StateStore) -> WebhookParser:
    """The `WebhookParser` of ConfigCat sources, reading their settings from `store`."""

    def parse(source: Source, headers: Headers, body: bytes, now: datetime) -> list[Message]:
        settings = load_settings(store, source.name)
        webhook_id, timestamp = verify(headers, body, settings.signing_keys, now)
        try:
            call = _body_decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise IngestError(
                "invalid_body",
                f"the body does not follow the documented template: {exc}",
            ) from exc
        return [to_message(call, webhook_id, timestamp, settings)]

    return parse


def to_message(
    call: WebhookBody,
    webhook_id: str,
    timestamp: int,
    settings: SourceSettings,
    integration: str = "configcat-webhook",
) -> Message:
    """The Feature Flag Changed track event of one webhook call (or of one change of
    Trackway's own flags, `integration` "trackway-flags", see trackway.flags.changes)."""
    name, email = _who(call.changed_by)
    changes = [_change(c) for c in call.change_details]
    summary = "; ".join(
        " ".join((c.details or "").split()) or c.setting_key for c in call.change_details
    )
    when = datetime.fromtimestamp(timestamp, UTC)
    properties: dict[str, Any] = {
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "details": summary or (call.change_notes or ""),
        "product_id": settings.product_id,
        "product_name": settings.product_name,
        "config_id": call.config_id,
        "config_name": call.config_name,
        "environment_id": call.environment_id,
        "environment_name": call.environment_name,
        "url": call.url,
        "userId": email or name,
        "user_email": email,
        "user_full_name": name,
        "change_notes": call.change_notes,
        "changes": changes,
    }
    return Message(
        message_id=str(uuid.uuid5(_NAMESPACE, webhook_id)),
        type="track",
        event=EVENT,
        user_id=email or name or None,
        anonymous_id=None if (email or name) else "configcat",
        properties=raw_object(properties),
        context=raw_object({"integration": {"name": integration}}),
        timestamp=when,
    )


def _change(change: Change) -> dict[str, Any]:
    out: dict[str, Any] = {
        "setting_key": change.setting_key,
        "event": change.event,
        "details": (change.details or "").strip(),
    }
    if change.before is not None or change.after is not None:
        out.update(before=change.before, after=change.after)
    return out


def _who(changed_by: str | None) -> tuple[str | None, str | None]:
    """`##ChangedBy##` is "Name (email)"; also accept "Name <email>" or a bare value."""
    if not changed_by or not changed_by.strip():
        return None, None
    match = _CHANGED_BY.match(changed_by)
    if match:
        return match["name"] or None, match["email"]
    text = changed_by.strip()
    return (None, text) if "@" in text else (text, None)
