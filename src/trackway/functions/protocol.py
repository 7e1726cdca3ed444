"""The messages between the pool and a worker: msgspec JSON, each frame prefixed by its
length (4 bytes, big-endian), over the worker's stdin and stdout.

A worker says `Hello` once it has started. For each `Call` it answers `Loaded` (the
code is ready, or why not) and then one `Outcome` per event, in order, as soon as that
event is done, so that the pool knows which event was running if the worker dies.
"""

import struct
from typing import Any

import msgspec

from trackway import codec
from trackway.functions.outcome import Failure, Outcome

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30


class Hello(msgspec.Struct, frozen=True):
    """The worker is up and waiting for calls."""


class Call(msgspec.Struct, frozen=True):
    """Run `code`'s transform on each event."""

    code: str
    settings: dict[str, Any]
    events: list[dict[str, Any]]


class Loaded(msgspec.Struct, frozen=True):
    """The code is compiled and its module ran; or the failure every event gets."""

    failure: Failure | None = None


hello_decoder = msgspec.json.Decoder(Hello)
call_decoder = msgspec.json.Decoder(Call)
loaded_decoder = msgspec.json.Decoder(Loaded)
outcome_decoder = msgspec.json.Decoder(Outcome)


def frame(message: Hello | Call | Loaded | Outcome) -> bytes:
    """The message as one frame; raises TypeError for values JSON cannot hold."""
    payload = codec.dumps(message)
    return HEADER.pack(len(payload)) + payload
