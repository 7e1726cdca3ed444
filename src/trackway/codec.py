"""The one JSON facade: every module encodes and decodes JSON through here."""

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_sorted_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()

DecodeError = msgspec.DecodeError


def dumps(value: Any) -> bytes:
    """Encode a value as compact JSON bytes."""
    return _encoder.encode(value)


def dumps_sorted(value: Any) -> bytes:
    """Encode a value as compact JSON bytes with every object's keys sorted: equal values
    give equal bytes (for digests)."""
    return _sorted_encoder.encode(value)


def dumps_text(value: Any) -> str:
    """Encode a value as a compact JSON string."""
    return _encoder.encode(value).decode()


def loads(data: bytes | str) -> Any:
    """Decode JSON bytes or text into plain Python values."""
    return _decoder.decode(data)
