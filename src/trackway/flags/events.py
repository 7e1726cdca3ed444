""" "Feature Flag Evaluated" events of server-side (OFREP) evaluations.

An environment with `evaluated_events` (docs/flags.md) turns each single-flag OFREP
evaluation into the events docs/flag-events.md describes for the SDK hooks: an identify
of the user, then a track `Feature Flag Evaluated` with `feature_flag_key`, `value`,
`variation_id`, `user` and `reason`. They are appended to the named source through the
normal ingest path (normalized, deduplicated by messageId, then read by destinations and
the warehouse like any event), and the OFREP answer is sent only after they are
committed: an answered evaluation's events are on disk.

Sampling is by user: a user is in the sample when the hash of its identifier and the
flag key falls below `sample`, so a sampled user's evaluations of that flag are all kept
(evaluations without a user are sampled by flag key alone). The same user, flag and
variation are sent at most once per `window`, remembered per server process.
"""

import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from trackway.flags.environments import Environment
from trackway.flags.evaluate import Evaluation, User
from trackway.ingest.handler import Ingestor
from trackway.ingest.sources import SourceCache
from trackway.spec.errors import IngestError
from trackway.spec.message import Message, raw_object
from trackway.storage.base import StorageUnavailable

EVENT = "Feature Flag Evaluated"
INTEGRATION = {"name": "trackway-ofrep", "version": "1.0.0"}
LONG_VALUE = 100
"""A text value longer than this is sent as its variation id (as the SDK hooks do)."""

_log = logging.getLogger(__name__)
_NAMESPACE = uuid.UUID("6f1f0d4e-3b1a-4c55-9a53-0c2f8f5a2e11")


class EvaluatedEvents:
    """Sends the evaluated events of the environments that ask for them."""

    def __init__(
        self,
        ingestor: Ingestor,
        sources: SourceCache,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
    ) -> None:
        self._ingestor = ingestor
        self._sources = sources
        self._clock = clock
        self._max_entries = max_entries
        self._sent: OrderedDict[tuple[str, str, str, str | None], float] = OrderedDict()

    async def __call__(self, env: Environment, result: Evaluation, user: User | None) -> None:
        settings = env.events
        if settings is None:
            return
        identifier = user.identifier if user is not None else None
        if not _sampled(settings.sample, identifier, result.key):
            return
        seen = (env.sdk_key, identifier or "", result.key, result.variation_id)
        now = self._clock()
        last = self._sent.get(seen)
        if last is not None and now - last < settings.window_s:
            return
        source = self._sources.named(settings.source)
        if source is None:
            _log.warning(
                "flag environment '%s' sends evaluated events to source '%s', which does not"
                " exist: the events are not sent",
                env.name,
                settings.source,
            )
            return
        try:
            await self._ingestor.append(source, messages(env, result, user), datetime.now(UTC))
        except (IngestError, StorageUnavailable) as exc:
            # The evaluation is still answered; its events were not stored, so not remembered.
            _log.warning("evaluated events of '%s' were not stored: %s", result.key, exc)
            return
        self._sent[seen] = now
        self._sent.move_to_end(seen)
        while len(self._sent) > self._max_entries:
            self._sent.popitem(last=False)


def messages(env: Environment, result: Evaluation, user: User | None) -> list[Message]:
    """The identify (when there is a user) and the track of one evaluation."""
    now = datetime.now(UTC)
    context = raw_object({"integration": INTEGRATION, "flag_environment": env.name})
    value = result.value
    if isinstance(value, str) and len(value) > LONG_VALUE and result.variation_id is not None:
        value = result.variation_id
    properties: dict[str, Any] = {
        "feature_flag_key": result.key,
        "value": value,
        "variation_id": result.variation_id,
        "reason": result.reason,
    }
    if result.error is not None:
        properties["error"] = result.error
    ids: dict[str, Any] = {"anonymous_id": str(uuid.uuid5(_NAMESPACE, env.name))}
    out = []
    if user is not None:
        traits = user.to_json()
        properties["user"] = traits
        ids = {"user_id": user.identifier}
        out.append(
            Message(
                message_id=str(uuid.uuid4()),
                type="identify",
                traits=raw_object(traits),
                context=context,
                timestamp=now,
                **ids,
            )
        )
    out.append(
        Message(
            message_id=str(uuid.uuid4()),
            type="track",
            event=EVENT,
            properties=raw_object(properties),
            context=context,
            timestamp=now,
            **ids,
        )
    )
    return out


def _sampled(sample: float, identifier: str | None, key: str) -> bool:
    if sample >= 1:
        return True
    digest = hashlib.sha256(f"{identifier or ''}\0{key}".encode()).digest()
    return int.from_bytes(digest[:4]) / 2**32 < sample
