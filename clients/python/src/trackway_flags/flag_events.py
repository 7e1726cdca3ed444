"""Feature Flag Evaluated events: the identify and track calls for one flag evaluation.

The ConfigCat hook (`configcat_hook`) and the OpenFeature hook (`openfeature_hook`)
turn their SDK's evaluation details into an `Evaluation`; a `FlagEventSender` turns
that into Segment calls on any Segment-style analytics client (segment-analytics-python's
`Client`, or the `segment.analytics` module itself) and never lets an error reach the
flag evaluation.

Only the standard library is imported here, so this works without the flag SDKs.
"""

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as time_of_day
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)

Spelling = Literal["segment_track", "source_page"]


@dataclass(frozen=True, slots=True)
class EventSpelling:
    """The event name and property names of one spelling of the evaluation event."""

    event: str
    flag_key: str
    variation_id: str
    user_id: str | None  # the user id repeated as a property (only the source page does)


SPELLINGS: dict[str, EventSpelling] = {
    # ConfigCat's Segment integration docs, in the Segment spec's "Object Action" style.
    "segment_track": EventSpelling(
        "Feature Flag Evaluated", "feature_flag_key", "variation_id", None
    ),
    # Segment's catalog page of the ConfigCat source.
    "source_page": EventSpelling("featureFlagEvaluated", "featureFlagKey", "variationId", "userId"),
}

DEFAULT_LONG_VALUE_THRESHOLD = 100
"""Text values longer than this many characters are replaced by the variation id."""

DEFAULT_DEDUP_MAX_ENTRIES = 10_000
"""How many (user, flag, variation) keys the de-duplication window remembers at most."""

_MAX_DEPTH = 32  # deeper values are sent as text: a flag value or a user is never that deep


class AnalyticsClient(Protocol):
    """What the sender needs of an analytics client: segment-analytics-python's
    `Client.identify` and `Client.track` (or the module-level functions), which it
    calls with keyword arguments only."""

    def identify(
        self,
        *,
        user_id: str | None = ...,
        traits: dict[str, Any] | None = ...,
        context: dict[str, Any] | None = ...,
        anonymous_id: str | None = ...,
    ) -> object: ...

    def track(
        self,
        *,
        user_id: str | None = ...,
        event: str | None = ...,
        properties: dict[str, Any] | None = ...,
        context: dict[str, Any] | None = ...,
        anonymous_id: str | None = ...,
    ) -> object: ...


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One flag evaluation, independent of the flag SDK that made it."""

    flag_key: str
    value: Any
    variation_id: str | None = None
    user_id: str | None = None  # None or "": no identify, the anonymous id is used
    user: Mapping[str, Any] | None = None  # the user's attributes (identify traits)
    reason: str | None = None  # OpenFeature's reason names: TARGETING_MATCH, SPLIT, ...
    error: str | None = None  # why the evaluation failed (the value is then the default)


@dataclass(frozen=True, slots=True)
class Calls:
    """The calls for one evaluation, as keyword arguments of `identify` and `track`."""

    identify: dict[str, Any] | None  # None when the evaluation had no user id
    track: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SenderStats:
    """What a `FlagEventSender` has done so far (a snapshot)."""

    evaluations: int = 0
    identifies_sent: int = 0
    tracks_sent: int = 0
    identifies_deduplicated: int = 0
    tracks_deduplicated: int = 0
    errors: int = 0  # calls that raised (logged, never passed on)


# -- the anonymous id ----------------------------------------------------------------

_anonymous_id: str | None = None
_anonymous_lock = threading.Lock()


def process_anonymous_id() -> str:
    """The anonymous id for evaluations without a user: a random UUID made on first use
    and kept for the life of this process (a forked child makes its own)."""
    global _anonymous_id
    with _anonymous_lock:
        if _anonymous_id is None:
            _anonymous_id = str(uuid.uuid4())
        return _anonymous_id


def _forget_anonymous_id() -> None:
    global _anonymous_id, _anonymous_lock
    _anonymous_id = None
    # The parent may have held the lock while forking; the child gets a fresh one.
    _anonymous_lock = threading.Lock()


# A forked worker (gunicorn, multiprocessing) is another process: two workers sharing
# one anonymous id would look like one visitor.
os.register_at_fork(after_in_child=_forget_anonymous_id)


# -- values ----------------------------------------------------------------------------


def jsonable(value: Any, _depth: int = 0) -> Any:
    """`value` as plain JSON data.

    Dates become ISO-8601 text; non-finite floats and unknown objects become text
    (a NaN would make the analytics client send invalid JSON, and the server would
    refuse the whole batch it is in).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if _depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1) for v in value]
    return str(value)


def reported_value(value: Any, variation_id: str | None, threshold: int | None) -> Any:
    """The `value` property: the value, or its variation id when it is long text.

    Long means more than `threshold` characters (structured values are measured as
    compact JSON); `threshold=None` never replaces. Without a variation id a long value
    is replaced by `sha256:` and 16 hex digits of its hash, which, like a variation id,
    is the same for the same value and short.
    """
    value = jsonable(value)
    if threshold is None:
        return value
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = _compact(value)
    else:
        return value
    if len(text) <= threshold:
        return value
    if variation_id:
        return variation_id
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# -- building the calls --------------------------------------------------------------


def build_calls(
    evaluation: Evaluation,
    *,
    spelling: Spelling,
    integration: Mapping[str, str],
    long_value_threshold: int | None,
    anonymous_id: str,
) -> Calls:
    """The identify (when there is a user id) and track calls for one evaluation.

    Every call gets `context.integration`; each call gets its own dicts because
    segment-analytics-python writes `context.library` into the context it is given.
    """
    names = SPELLINGS[spelling]
    user_id = evaluation.user_id or None
    user = jsonable(evaluation.user) if evaluation.user is not None else None
    who: dict[str, Any] = {"user_id": user_id} if user_id else {"anonymous_id": anonymous_id}

    properties: dict[str, Any] = {
        names.flag_key: evaluation.flag_key,
        "value": reported_value(evaluation.value, evaluation.variation_id, long_value_threshold),
        names.variation_id: evaluation.variation_id,
    }
    if names.user_id is not None and user_id:
        properties[names.user_id] = user_id
    if user is not None:
        properties["user"] = user
    if evaluation.reason is not None:
        properties["reason"] = evaluation.reason
    if evaluation.error is not None:
        properties["error"] = evaluation.error

    identify = None
    if user_id:
        identify = {
            "user_id": user_id,
            "traits": dict(user) if user is not None else {},
            "context": {"integration": dict(integration)},
        }
    track = {
        **who,
        "event": names.event,
        "properties": properties,
        "context": {"integration": dict(integration)},
    }
    return Calls(identify, track)


# -- de-duplication --------------------------------------------------------------------


class DedupWindow:
    """Remembers keys for `window_s` seconds from their first sighting, and at most
    `max_entries` of them (the oldest is forgotten first, so memory stays bounded; a
    forgotten key is simply sent again)."""

    def __init__(
        self, window_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"dedup window must be positive, got {window_s!r}")
        if max_entries < 1:
            raise ValueError(f"dedup max_entries must be at least 1, got {max_entries!r}")
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        # key -> expiry. Every key gets the same window and the clock only moves
        # forward, so insertion order is expiry order: expired keys are at the front.
        self._expiry: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: bytes) -> bool:
        """True (and remember `key`) unless `key` was seen within the window."""
        with self._lock:
            now = self._clock()
            while self._expiry:
                oldest, expiry = next(iter(self._expiry.items()))
                if expiry > now:
                    break
                del self._expiry[oldest]
            if key in self._expiry:
                return False
            self._expiry[key] = now + self.window_s
            if len(self._expiry) > self.max_entries:
                self._expiry.popitem(last=False)
            return True

    def forget(self, key: bytes) -> None:
        """Drop `key`, so that it is sent again (after a failed send)."""
        with self._lock:
            self._expiry.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)


def _digest(*parts: Any) -> bytes:
    """A key for the dedup window from parts that are already JSON data."""
    # 16 bytes of blake2b: small to keep, and a collision (one evaluation wrongly taken
    # for a duplicate) is out of reach at any number of keys that fits in memory.
    text = json.dumps(parts, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


# -- sending ---------------------------------------------------------------------------


class FlagEventSender:
    """Sends the identify and Feature Flag Evaluated track calls for evaluations.

    `send` never raises: every exception (a bad value, a failing analytics client) is
    logged and counted. With `dedup_window_s`, the same track (user, flag, variation
    id and value) and the same identify (user and traits) are sent once per window.
    """

    def __init__(
        self,
        analytics: AnalyticsClient,
        *,
        integration: Mapping[str, str],
        spelling: Spelling = "segment_track",
        long_value_threshold: int | None = DEFAULT_LONG_VALUE_THRESHOLD,
        dedup_window_s: float | None = None,
        dedup_max_entries: int = DEFAULT_DEDUP_MAX_ENTRIES,
        anonymous_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if spelling not in SPELLINGS:
            raise ValueError(f"spelling must be one of {sorted(SPELLINGS)}, got {spelling!r}")
        if long_value_threshold is not None and long_value_threshold < 0:
            raise ValueError(f"long_value_threshold must be >= 0, got {long_value_threshold!r}")
        self.analytics = analytics
        self.integration = dict(integration)
        self.spelling: Spelling = spelling
        self.long_value_threshold = long_value_threshold
        self.anonymous_id = anonymous_id
        self.dedup = (
            DedupWindow(dedup_window_s, dedup_max_entries, clock)
            if dedup_window_s is not None
            else None
        )
        self._counts = dict.fromkeys(SenderStats.__dataclass_fields__, 0)
        self._lock = threading.Lock()

    @property
    def stats(self) -> SenderStats:
        """Counters since this sender was made."""
        with self._lock:
            return SenderStats(**self._counts)

    def send(self, evaluation: Evaluation) -> None:
        """Send the calls for one evaluation. Never raises."""
        try:
            self._count("evaluations")
            self._send(evaluation)
        except Exception:
            self.log_failure("send the events", evaluation.flag_key)

    def _send(self, evaluation: Evaluation) -> None:
        calls = build_calls(
            evaluation,
            spelling=self.spelling,
            integration=self.integration,
            long_value_threshold=self.long_value_threshold,
            anonymous_id=self.anonymous_id or process_anonymous_id(),
        )
        if calls.identify is not None:
            key = _digest("identify", calls.identify["user_id"], calls.identify["traits"])
            self._call("identify", calls.identify, key, evaluation)
        # The same user, flag and variation is one fact however often it is seen: the
        # track's key leaves out the user's attributes, reason and error. The value is in
        # it for flags without variation ids.
        distinct_id = calls.track.get("user_id") or calls.track.get("anonymous_id")
        value = calls.track["properties"]["value"]
        key = _digest("track", distinct_id, evaluation.flag_key, evaluation.variation_id, value)
        self._call("track", calls.track, key, evaluation)

    def _call(
        self,
        method: Literal["identify", "track"],
        kwargs: dict[str, Any],
        key: bytes,
        ev: Evaluation,
    ) -> None:
        plural = "identifies" if method == "identify" else "tracks"
        if self.dedup is not None and not self.dedup.first(key):
            self._count(f"{plural}_deduplicated")
            return
        try:
            if method == "identify":
                self.analytics.identify(**kwargs)
            else:
                self.analytics.track(**kwargs)
        except Exception:
            if self.dedup is not None:
                self.dedup.forget(key)  # not sent: the next evaluation may try again
            self.log_failure(method, ev.flag_key)
            return
        self._count(f"{plural}_sent")

    def log_failure(self, what: str, flag_key: object) -> None:
        """Count and log (with the traceback) a failure to `what` for `flag_key`; called
        from an `except` block. Never raises."""
        # A broken log handler must not reach the evaluation either.
        with contextlib.suppress(Exception):
            self._count("errors")
            logger.warning(
                "Trackway flag events: could not %s for flag %r", what, flag_key, exc_info=True
            )

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1
