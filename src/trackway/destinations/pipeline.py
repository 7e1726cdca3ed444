"""One destination, compiled: which events it takes, and the requests they become.

The order is Segment's: the event's `integrations` → the destination's filters → the
subscriptions' conditions (matched on the event before the insert function) → the
insert function → each matched action's mapping → payload validation → the request.
"""

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from trackway import codec, fql
from trackway.destinations.config import (
    MAX_BATCH_BYTES,
    DestinationSpec,
    check,
    compile_condition,
)
from trackway.destinations.filters import DropReason, FilterChain, compile_filters
from trackway.destinations.framework import (
    Action,
    Definition,
    Discard,
    SettingType,
    SettingValues,
    check_settings,
    validate_payload,
)
from trackway.destinations.secrets import MASK
from trackway.destinations.transport import Request, Response
from trackway.mapping import UnmappableEvent
from trackway.mapping.engine import Mapping, compile_mapping
from trackway.settings import parse_duration

SAMPLE_BYTES = 4_096
"""How much of a request or response body an error sample keeps."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A compiled subscription: its condition, its action and its mapping."""

    name: str
    action: Action
    condition: fql.Expression
    mapping: Mapping
    batch: bool

    def payload(self, event: dict[str, Any]) -> dict[str, Any]:
        """The validated payload for one event; raises Discard when it is not valid."""
        try:
            mapped = self.mapping.apply(event)
        except UnmappableEvent as exc:  # (as in Segment: the action fails for this event)
            raise Discard(str(exc)) from exc
        return validate_payload(self.action, mapped)


@dataclass(frozen=True, slots=True)
class Routed:
    """Where one event goes: the event after filters and the subscriptions it matched,
    or why it goes nowhere (`skipped`: integrations, `filtered`, `unsubscribed`)."""

    event: dict[str, Any] | None
    subscriptions: tuple[Subscription, ...] = ()
    reason: str = ""
    detail: str = ""


class Destination:
    """A destination's spec compiled with its plain settings, ready to route events."""

    def __init__(
        self,
        spec: DestinationSpec,
        settings: dict[str, Any],
        rng: Callable[[], float] = random.random,
        source_ids: frozenset[int] | None = None,
    ) -> None:
        """`source_ids`: the ids of the spec's `sources` (None: it takes every source)."""
        self.spec = spec
        self.source_ids = source_ids
        self.name = spec.name
        self.definition: Definition = check(spec)
        self.timeout_s = parse_duration(spec.delivery.timeout)
        self.retry_for_s = parse_duration(spec.delivery.retry_for)
        self.settings = check_settings(self.definition, settings)
        self.filters: FilterChain | None = (
            compile_filters(spec.filters, rng=rng) if spec.filters else None
        )
        self.subscriptions = tuple(
            _subscription(self.definition, s.name, s.action, s.if_, s.mapping, s.batch)
            for s in spec.subscriptions or []
            if s.enabled
        )
        # Segment's `integrations` keys name destinations by their display name; a key
        # may also be this destination's own name or its type.
        self._keys = (spec.name, self.definition.title, self.definition.name)
        self._secrets = [
            str(value)
            for name, value in self.settings.items()
            if self.definition.setting(name).type is SettingType.SECRET and value
        ]

    def takes(self, source_id: int) -> bool:
        """Whether events of this source come to this destination at all (events of
        other sources are not its business: they are not counted either)."""
        return self.source_ids is None or source_id in self.source_ids

    def route(self, event: dict[str, Any], *, filters: bool = True) -> Routed:
        """Where `event` goes (the event tester routes without filters)."""
        if not self._enabled_by(event):
            return Routed(None, reason="skipped", detail="turned off by the event's integrations")
        if filters and self.filters is not None:
            outcome = self.filters.apply(event)
            if outcome.event is None:
                unevaluable = outcome.reason is DropReason.UNEVALUABLE
                return Routed(
                    None,
                    reason="filtered",
                    detail=f"{outcome.reason}: {outcome.detail}" if unevaluable else outcome.detail,
                )
            event = outcome.event
        matched = tuple(s for s in self.subscriptions if _matches(s.condition, event))
        if not matched:
            return Routed(event, reason="unsubscribed", detail="no subscription matches this event")
        return Routed(event, matched)

    def requests(
        self, subscription: Subscription, payloads: list[dict[str, Any]]
    ) -> Iterator[tuple[list[int], Request | Discard]]:
        """The requests for these payloads of one subscription, each with the indexes of
        the payloads it carries: batches (of payloads equal in the action's batch keys, up
        to the batch size and bytes) when the subscription batches, else one request per
        payload. A request the action refuses to build (an event too large, a header it
        cannot send) is its Discard."""
        action = subscription.action
        if not (subscription.batch and action.perform_batch is not None):
            for index, payload in enumerate(payloads):
                yield [index], _built(action.perform, payload, self.settings)
            return
        delivery = self.spec.delivery
        limit_bytes = min(delivery.batch_bytes, action.max_batch_bytes or MAX_BATCH_BYTES)
        groups: dict[bytes, list[int]] = {}
        for index, payload in enumerate(payloads):
            key = codec.dumps([payload.get(k) for k in action.batch_keys])
            groups.setdefault(key, []).append(index)
        for members in groups.values():
            indexes: list[int] = []
            size = 0
            for index in members:
                length = len(codec.dumps(payloads[index]))
                full = len(indexes) >= delivery.batch_size or size + length > limit_bytes
                if indexes and full:
                    batch = [payloads[i] for i in indexes]
                    yield indexes, _built(action.perform_batch, batch, self.settings)
                    indexes, size = [], 0
                indexes.append(index)
                size += length
            if indexes:
                batch = [payloads[i] for i in indexes]
                yield indexes, _built(action.perform_batch, batch, self.settings)

    def sample_request(self, request: Request) -> dict[str, Any]:
        """A request as shown in samples and by the event tester: secrets masked."""
        headers = {
            name: MASK if name.lower() in _SECRET_HEADERS else self._mask(value)
            for name, value in request.headers.items()
        }
        return {
            "method": request.method,
            "url": _SECRET_QUERY.sub(rf"\1{MASK}", self._mask(request.url)),
            "headers": headers,
            "body": self._mask(_text(request.body)),
        }

    def sample_response(self, response: Response) -> dict[str, Any]:
        """A response as shown in samples and by the event tester."""
        return {
            "status": response.status,
            "headers": response.headers,
            "body": _text(response.body),
            "elapsed_ms": round(response.elapsed_ms, 1),
        }

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _enabled_by(self, event: dict[str, Any]) -> bool:
        integrations = event.get("integrations")
        if not isinstance(integrations, dict):
            return True
        for key in self._keys:
            if key in integrations:
                return integrations[key] is not False
        return integrations.get("All") is not False


_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})
_SECRET_QUERY = re.compile(
    r"([?&][^=&#]*(?:secret|token|password|passwd|api_?key|apikey|signature)[^=&#]*=)[^&#]*",
    re.IGNORECASE,
)
"""Query parameters whose values are masked in samples, whatever their origin (a secret
derived from a setting, as Kameleoon's decoded API key, is not a setting's value)."""


def _subscription(
    definition: Definition,
    name: str,
    action_name: str,
    condition: str,
    mapping: dict[str, Any] | None,
    batch: bool | None,
) -> Subscription:
    action = definition.action(action_name)
    return Subscription(
        name,
        action,
        compile_condition(condition),
        compile_mapping(mapping if mapping is not None else action.default_mapping()),
        action.batch_by_default if batch is None else batch,
    )


def _built(
    perform: Callable[[Any, SettingValues], Request], payload: Any, settings: SettingValues
) -> Request | Discard:
    try:
        return perform(payload, settings)
    except Discard as exc:
        return exc


def _matches(condition: fql.Expression, event: dict[str, Any]) -> bool:
    try:
        return condition.matches(event)
    except fql.EvaluationError:
        return False


def _text(body: bytes) -> str:
    text = body[:SAMPLE_BYTES].decode("utf-8", "replace")
    return text + "…" if len(body) > SAMPLE_BYTES else text
