"""Finding the write key of a tracking request (Basic auth, or `writeKey` in the body)."""

import base64
import binascii

import msgspec

from trackway.spec.errors import IngestError


class _KeyOnly(msgspec.Struct, rename="camel"):
    write_key: str | None = None


_key_decoder = msgspec.json.Decoder(_KeyOnly)


def key_from_header(authorization: str | None) -> str | None:
    """The write key of an `Authorization: Basic base64(key:)` header, if there is one.

    A Bearer token carries no write key (Segment's OAuth variant sends `writeKey` in
    the body beside it), so it yields None.
    """
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise IngestError(
            "invalid_authorization", "the Basic credentials are not valid base64", 401
        ) from exc
    return decoded.partition(":")[0] or None


def key_from_body(body: bytes) -> str | None:
    """The top-level `writeKey` of a JSON body; raises `IngestError` for a non-JSON body."""
    try:
        return _key_decoder.decode(body).write_key
    except msgspec.ValidationError as exc:
        raise IngestError("invalid_field", f"{exc}") from exc
    except msgspec.DecodeError as exc:
        raise IngestError("invalid_json", f"the body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise IngestError("invalid_json", "the body is nested too deeply") from None
